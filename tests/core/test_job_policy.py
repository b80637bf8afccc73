"""The job policy both the server and the agent apply: opt-in, then allow patterns whose
wildcards never match shell control characters."""

from __future__ import annotations

import pytest

from arcade_core.job_policy import JobPolicy, command_allowed


@pytest.mark.parametrize(("command", "patterns", "allowed"), [
    ("anything at all", [], True),
    ("make test", ["make *"], True),
    ("  make test  ", ["make *"], True),
    ("make", ["make *"], False),
    ("make test; rm -rf ~", ["make *"], False),
    ("make test && id", ["make *"], False),
    ("make test | sh", ["make *"], False),
    ("make `id`", ["make *"], False),
    ("make $(id)", ["make *"], False),
    ("make test > /etc/passwd", ["make *"], False),
    ("make test\nid", ["make *"], False),
    ("make a\\;b", ["make *"], False),
    ("make test && make lint", ["make test && make lint"], True),
    ("pytest -q", ["make *", "pytest -?"], True),
    ("pytest -qq", ["pytest -?"], False),
    ("make [ab]", ["make [ab]"], True),
    ("make a", ["make [ab]"], False),
])
def test_patterns_match_whole_commands_and_wildcards_stop_at_shell_syntax(
    command: str, patterns: list[str], allowed: bool
) -> None:
    assert command_allowed(command, patterns) is allowed


def test_a_policy_refuses_everything_until_enabled_then_names_what_does_not_match() -> None:
    assert JobPolicy().refusal(["true"], "agent 'a'") == (
        "agent 'a' does not run jobs: set `[jobs] enabled = true` in the agent's config file "
        "(or ARCADE_AGENT_JOBS_ENABLED=true) and restart the agent")
    policy = JobPolicy(True, ("make *",))
    assert policy.refusal(["make test", "make lint"]) is None
    assert policy.refusal(["make test", "x" * 300]) == (
        f"commands[1] {'x' * 199 + '…'!r} is not allowed on this agent: it matches none of "
        "its [jobs] allow patterns ['make *']")
    assert JobPolicy(True).refusal(["rm -rf /tmp/x"]) is None
