"""Schemathesis against a real, seeded ``arcade server`` on loopback (bounded: a few examples
per operation): no request gets a 5xx, every status, content type, header and body conforms
to ``/openapi.json``, and data the document forbids is rejected. ``scripts/fuzz-api`` is the
long run of the same checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.api.live import LiveServer

#: The work is CPU-bound (hypothesis generating cases): about 30 s on an idle machine, several
#: times that on a loaded one, hence its own timeout rather than the suite's 120 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

#: Test cases per operation and generation mode: 28 operations x 2 modes x this.
EXAMPLES = 8
CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(Path(tmp_path_factory.mktemp("fuzz"))) as running:
        yield running


def _fuzz(operation: Any, mode: Any, base_url: str, checks: list[Any],
          headers: dict[str, str]) -> list[str]:
    """Run ``EXAMPLES`` generated cases of one operation; return the failures seen."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=checks)
        except (Failure, FailureGroup) as exc:
            failures.append(f"{operation.label} [{mode}]: {exc}".splitlines()[0][:500] + "\n"
                            + str(exc)[:1500])

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation's schema can be violated (a multipart upload, a route
        # without parameters): there is no negative case to send.
        assert mode == GenerationMode.NEGATIVE, operation.label
    return failures


def test_the_api_conforms_to_its_document(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    # Every call carries the run's admin token: a case "without Authorization" would be sent
    # with it anyway (the refusals of anonymous calls are tested in test_access.py).
    schema.config.generation.update(with_security_parameters=False)
    base_url = live.url
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        headers = live.server.auth_headers
        failures += _fuzz(operation, GenerationMode.POSITIVE, base_url, CHECKS, headers)
        failures += _fuzz(operation, GenerationMode.NEGATIVE, base_url,
                          [*CHECKS, negative_data_rejection], headers)
    # 23 + 5 token/audit + 7 identity + 2 fleet views + plugin logs + import and updates + 3
    # signing (a version's signatures, a name's keys: get and put) + an assignment's in-place
    # change (PATCH: config, interval, limits)
    assert operations == 44
    assert live.server.alive, live.server.log()[-3000:]
    assert "unexpected error answering" not in live.server.log()
    assert not failures, "\n\n".join(failures[:20])
