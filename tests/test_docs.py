"""The examples of README.md and docs/plugin-authoring.md run (tests/docs.py: which blocks
run is marked in the documents, and every runnable-looking block must be marked).

The blocks that need a server share one real ``arcade server`` and one ``arcade agent``
process for this module; plugin-authoring.md's last example (a broken plugin seen as
``degraded`` in ``arcade status``) is its own test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import DocSession, blocks, unmarked
from tests.e2e.harness import AgentProc, Server, wait_until

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
AUTHORING = REPO / "docs" / "plugin-authoring.md"
AGENT_ID = "docs-agent"


@pytest.mark.parametrize("doc", [README, AUTHORING], ids=lambda p: p.name)
def test_every_runnable_looking_block_says_whether_it_runs(doc: Path) -> None:
    assert unmarked(doc) == [], (
        "mark each block with <!-- doc: run -->, <!-- doc: file PATH --> or "
        "<!-- doc: skip REASON --> on the line above its fence (see tests/docs.py)")


def test_the_markers_mean_what_tests_docs_says(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- doc: file sub/hello.txt -->\n```text\nhello\n```\n\n"
        "<!-- doc: run expect=\"hello\" -->\n```sh\ncd sub\ncat hello.txt\n```\n\n"
        "<!-- doc: run until=\"3\" -->\n```sh\n"
        "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; cat count\n```\n\n"
        "<!-- doc: skip never runs -->\n```sh\nexit 1\n```\n\n"
        "```python\nraise SystemExit(1)\n```\n\n"
        "<!-- doc: run cwd=\".\" expect=\"hello\" -->\n```sh\ncat sub/hello.txt\n```\n"
    )
    session = DocSession(doc, tmp_path / "work")
    assert [b.kind for b in session.blocks] == ["file", "run", "run", "skip", None, "run"]
    assert unmarked(doc) == ["doc.md:22"]
    session.run_all(stop_before=5)
    assert session.cwd == tmp_path / "work" / "sub"  # the `cd` carried over
    assert (tmp_path / "work" / "sub" / "count").read_text() == "3\n"
    session.run_all(start=5)
    assert session.cwd == tmp_path / "work"
    failing = tmp_path / "failing.md"
    failing.write_text("<!-- doc: run expect=\"bye\" -->\n```sh\necho hello\n```\n")
    with pytest.raises(AssertionError, match="'bye' not in the output"):
        DocSession(failing, tmp_path / "work2").run_all()


@pytest.mark.e2e
def test_readme_examples_run(
    tmp_path: Path, builtin_wheels: dict[str, Path], psutil_wheel: Path
) -> None:
    (tmp_path / "wheels").mkdir()
    for wheel in (builtin_wheels["arcade-cpu"], psutil_wheel):
        shutil.copy(wheel, tmp_path / "wheels")
    DocSession(README, tmp_path).run_all()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One server and one agent (labelled role=ci) for the documents' examples: the
    environment the blocks run with."""
    base = tmp_path_factory.mktemp("docs-fleet")
    server = Server(base / "server-home", base / "server.log").start()
    agent = AgentProc(base / "agent-home", server, AGENT_ID, base / "agent.log")
    agent.args += ["--label", "role=ci"]
    try:
        agent.start()
        wait_until(lambda: (server.agent(AGENT_ID) or {}).get("online"),
                   what="the docs agent to come online")
        yield {"ARCADE_API": server.url, "ARCADE_TOKEN": server.admin_token,
               "AGENT_ID": AGENT_ID}
    finally:
        code = agent.stop()
        server.close()
        print(f"--- agent (exit {code}) ---\n{agent.log()[-6000:]}")
        print(f"--- server ---\n{server.log()[-6000:]}")


def _last_run_block() -> int:
    return max(i for i, b in enumerate(blocks(AUTHORING)) if b.kind == "run")


@pytest.fixture(scope="module")
def authoring(
    fleet: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> DocSession:
    """plugin-authoring.md run up to (not including) its last example."""
    session = DocSession(AUTHORING, tmp_path_factory.mktemp("authoring"), env=fleet)
    session.run_all(stop_before=_last_run_block())
    return session


@pytest.mark.e2e
def test_plugin_authoring_examples_and_walkthrough_run(authoring: DocSession) -> None:
    # Every block up to the break ran with what it expects (tests.docs asserts as it goes);
    # the reader ends in the new project, whose wheel was built there.
    assert authoring.cwd.name == "disk-entries"
    assert (authoring.cwd / "dist" / "disk_entries-0.1.0-py3-none-any.whl").is_file()


@pytest.mark.e2e
@pytest.mark.xfail(strict=True, reason="needs the plugin-truth branch")
def test_the_broken_plugin_shows_degraded_with_its_error_in_arcade_status(
    authoring: DocSession,
) -> None:
    authoring.run(authoring.blocks[_last_run_block()])
