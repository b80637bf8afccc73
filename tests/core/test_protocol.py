"""The JSON-lines protocol shared by the host and its plugin subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest

from arcade_core import Event, JobContext, JobResult, Metric, ProtocolError, _protocol
from arcade_core._protocol import (
    LineReader,
    decode_message,
    encode_message,
    from_wire,
    to_wire,
    write_all,
)
from tests.waiting import DEADLINE


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_value_types_round_trip_through_one_json_line() -> None:
    job = JobContext(job_id="j1", commands=["make"], env={"A": "1"}, stage="before",
                     plugin_config={"n": 2})
    result = JobResult(job_id="j1", status="failed", exit_code=2, output_tail="boom")
    metric = Metric(name="cpu.percent", value=12.5, labels={"cpu": "0"}, unit="percent",
                    timestamp=100.0)
    event = Event(kind="plugin.failed", data={"key": "cpu"}, timestamp=5.0)
    message = {"type": "call", "id": 3, "hook": "after",
               "kwargs": to_wire({"job": job, "result": result, "extra": [metric, event]})}

    line = encode_message(message)

    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["kwargs"]["job"]["$type"] == "JobContext"  # readable in logs
    decoded = decode_message(line)
    assert decoded["kwargs"] == {"job": job, "result": result, "extra": [metric, event]}


def test_from_wire_rebuilds_value_types_in_parsed_data() -> None:
    data = json.loads(json.dumps(to_wire([Metric("a", 1.0, timestamp=1.0), {"x": (1, 2)}])))

    assert from_wire(data) == [Metric("a", 1.0, timestamp=1.0), {"x": [1, 2]}]


def test_value_that_cannot_cross_is_refused_naming_its_type() -> None:
    with pytest.raises(TypeError, match=r"builtins\.set cannot cross the process boundary"):
        to_wire({"bad": {1, 2}})


def test_unknown_type_tag_is_left_as_plain_data() -> None:
    assert decode_message(b'{"type":"result","data":{"$type":"Nope","a":1}}\n')["data"] == {
        "$type": "Nope", "a": 1}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hello world\n", "not a JSON line"),
        (b"[1, 2]\n", "not a protocol message"),
        (b'{"id": 1}\n', "not a protocol message"),
        (b"\xff\xfe\n", "not a JSON line"),
    ],
)
def test_malformed_line_raises_protocol_error(line: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_message(line)


def test_line_reader_splits_lines_and_reports_end_of_file(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"one\ntwo\nthr")
    os.write(write_fd, b"ee\nlast-without-newline")
    os.close(write_fd)
    reader = LineReader(read_fd)

    lines = [reader.read_line(1.0) for _ in range(5)]

    assert lines == [b"one\n", b"two\n", b"three\n", b"last-without-newline", None]


def test_line_reader_times_out_without_a_full_line(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"partial")
    reader = LineReader(read_fd)

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.read_line(0.05)
    assert time.monotonic() - start >= 0.04  # it did wait

    os.write(write_fd, b" line\n")
    assert reader.read_line(DEADLINE) == b"partial line\n"


def test_line_reader_drops_an_overlong_line(pipe: tuple[int, int],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = pipe
    monkeypatch.setattr(_protocol, "MAX_LINE", 100)
    os.write(write_fd, b"x" * 300)
    reader = LineReader(read_fd)

    with pytest.raises(ProtocolError, match="longer than 100 bytes"):
        reader.read_line(1.0)


def test_write_all_delivers_more_than_a_pipe_buffer(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    payload = encode_message({"type": "result", "id": 1, "data": "y" * 300_000})
    received = bytearray()

    def drain() -> None:
        reader = LineReader(read_fd)
        line = reader.read_line(DEADLINE)
        assert line is not None
        received.extend(line)

    thread = threading.Thread(target=drain)
    thread.start()
    write_all(write_fd, payload)
    thread.join(DEADLINE)

    assert bytes(received) == payload
