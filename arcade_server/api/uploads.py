"""Streaming multipart uploads of wheels, straight to temp files, bounded in size.

The request body is parsed as it arrives (``python-multipart``'s push parser): each file part
in a ``wheels`` field goes to its own temp file (writes are done in a thread, a buffer of at most
1 MiB at a time), and the total is counted as it streams: past ``max_bytes`` (or one wheel past
``max_wheel_bytes``) the upload stops with 413 at once, whatever ``Content-Length`` claimed.
Nothing is held whole in memory, and the temp directory is removed on every error; what a
crash leaves in the upload directory is swept when the server starts
(:meth:`arcade_server.state.ServerState.start`).

Besides the wheels, the text fields ``public_key`` and ``signature`` (a publisher's signature
of the version's statement, each base64, at most once) are accepted and returned in
:attr:`UploadedWheels.fields`; any other field is refused.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ..errors import Invalid, PayloadTooLarge
from ..limits import MAX_WHEELS

__all__ = ["UploadedWheels", "receive_wheels"]

FIELD = "wheels"
#: The text fields a publish may carry besides the wheels (each at most once).
TEXT_FIELDS = ("public_key", "signature")
_FLUSH_BYTES = 1024 * 1024
_MAX_FILES = MAX_WHEELS


@dataclass
class UploadedWheels:
    """The temp directory holding the uploaded wheels; remove it with :meth:`cleanup`."""

    directory: Path
    paths: list[Path] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _safe_filename(raw: str) -> str:
    name = PurePosixPath(raw.replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or not name.endswith(".whl"):
        raise Invalid(
            f"uploaded file {raw!r} is not a wheel: each file in the 'wheels' field must be a "
            "'.whl' file"
        )
    return name


class _Sink:
    """Owns the temp files; used only from worker threads, one batch at a time."""

    def __init__(self) -> None:
        self.files: dict[int, IO[bytes]] = {}

    def apply(self, ops: list[tuple[str, int, Any]]) -> None:
        for op, index, arg in ops:
            if op == "open":
                arg.parent.mkdir()
                self.files[index] = open(arg, "wb")  # noqa: SIM115 (closed by "close"/close_all)
            elif op == "data":
                self.files[index].write(arg)
            else:
                self.files.pop(index).close()

    def close_all(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()


class _Parser:
    """Callbacks for the push parser; file operations are queued for a worker thread."""

    def __init__(self, directory: Path, max_wheel_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_wheel_bytes = max_wheel_bytes
        self._file_bytes = 0
        self.paths: list[Path] = []
        self._names: set[str] = set()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._index: int | None = None
        self._name = ""
        self._skipping = False
        self.ops: list[tuple[str, int, Any]] = []
        self.closes = 0
        self.error: Exception | None = None
        self.field_bytes = 0
        self.text_field: str | None = None
        self.texts: dict[str, bytearray] = {}

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._index = None
        self.text_field = None
        self._skipping = False
        self.field_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        field_name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if field_name in TEXT_FIELDS and filename is None:
            if field_name in self.texts:
                raise Invalid(f"the form field {field_name!r} was sent twice: send one")
            self.texts[field_name] = bytearray()
            self.text_field = field_name
            return
        if field_name != FIELD or filename is None:
            if self.error is None:
                self.error = Invalid(
                    f"unexpected form field {field_name!r}: send each wheel as a file in a "
                    f"field named {FIELD!r} (and a signature in the text fields "
                    f"{' and '.join(map(repr, TEXT_FIELDS))})"
                )
            self._skipping = True
            return
        name = _safe_filename(filename.decode("utf-8", "replace"))
        if name in self._names:
            raise Invalid(f"{name} was uploaded twice")
        if len(self._names) >= _MAX_FILES:
            raise Invalid(f"too many files: at most {_MAX_FILES} wheels per upload")
        self._names.add(name)
        self._index = len(self.paths)
        self._file_bytes = 0
        self._name = name
        path = self.directory / str(self._index) / name
        self.paths.append(path)
        self.ops.append(("open", self._index, path))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._index is not None:
            self._file_bytes += end - start
            limit = self.max_wheel_bytes
            if limit is not None and self._file_bytes > limit:
                raise PayloadTooLarge(
                    f"{self._name} is over the server's limit of {limit} bytes per wheel "
                    "(max_wheel_bytes)", {"max_wheel_bytes": limit},
                )
            self.ops.append(("data", self._index, data[start:end]))
        elif not self._skipping:
            self.field_bytes += end - start
            if self.text_field is not None and self.field_bytes <= 4096:
                self.texts[self.text_field] += data[start:end]

    def on_part_end(self) -> None:
        if self._index is not None:
            self.ops.append(("close", self._index, None))
            self.closes += 1
            self._index = None


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise Invalid("the client went away before the upload finished") from None


async def receive_wheels(request: Request, upload_dir: Path, max_bytes: int,
                         max_wheel_bytes: int | None = None) -> UploadedWheels:
    """Receive the ``wheels`` files of a multipart request into a fresh temp directory
    (each at most ``max_wheel_bytes``, all together at most ``max_bytes``)."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise Invalid(
            "send the wheels as multipart/form-data, each file in a field named 'wheels' "
            "(e.g. curl -F wheels=@plugin.whl -F wheels=@dep.whl URL)"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"upload of {int(declared)} bytes is over the server's limit of {max_bytes} bytes "
            "(max_upload_bytes)", {"max_upload_bytes": max_bytes},
        )
    upload_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=upload_dir, prefix="up-"))
    uploaded = UploadedWheels(directory)
    state = _Parser(directory, max_wheel_bytes)
    callbacks: Any = {
        "on_part_begin": state.on_part_begin,
        "on_part_data": state.on_part_data,
        "on_part_end": state.on_part_end,
        "on_header_field": state.on_header_field,
        "on_header_value": state.on_header_value,
        "on_header_end": state.on_header_end,
        "on_headers_finished": state.on_headers_finished,
    }
    parser = MultipartParser(params[b"boundary"], callbacks)
    sink = _Sink()
    received = 0
    try:
        pending = 0
        async for chunk in _chunks(request):
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(
                    f"upload is over the server's limit of {max_bytes} bytes (max_upload_bytes)",
                    {"max_upload_bytes": max_bytes},
                )
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise Invalid(f"malformed multipart body: {exc}") from None
            if state.field_bytes > 64 * 1024:
                raise Invalid("form fields other than 'wheels' files are not accepted")
            if state.text_field is not None and state.field_bytes > 4096:
                raise Invalid(f"the form field {state.text_field!r} is over 4096 bytes: it holds "
                              "one base64 value")
            pending += len(chunk)
            if pending >= _FLUSH_BYTES:
                ops, state.ops = state.ops, []
                await asyncio.to_thread(sink.apply, ops)
                pending = 0
        try:
            parser.finalize()
        except FormParserError as exc:
            raise Invalid(f"malformed multipart body: {exc}") from None
        ops, state.ops = state.ops, []
        await asyncio.to_thread(sink.apply, ops)
        if state.error is not None:
            raise state.error
        if state.closes != len(state.paths) or sink.files:
            raise Invalid("malformed multipart body: a file part was not terminated")
        uploaded.paths = list(state.paths)
        uploaded.fields = {name: bytes(value).decode("utf-8", "replace").strip()
                           for name, value in state.texts.items()}
        return uploaded
    except BaseException:
        await asyncio.to_thread(sink.close_all)
        await asyncio.to_thread(uploaded.cleanup)
        raise
