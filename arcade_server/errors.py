"""The server's exceptions: one root, :class:`ServerError`, under :class:`arcade_core.ArcadeError`.

* :class:`ServiceError` and its subclasses are raised on purpose by the service functions for
  input a caller got wrong; each maps to one HTTP status and one gRPC code. REST answers them
  as ``{"error": message, "detail": detail}`` plus ``"hints"`` when the error has any
  (:mod:`arcade_server.api.errors`); gRPC aborts with the code
  (:mod:`arcade_server.rpc.servicer`). Anything else escaping a handler is a bug (500), never
  the answer to bad input.
* A :class:`Hint` is one way to fix an error, in the two forms callers need: the message
  names the REST form (a route, a request field), and the ``arcade`` CLI shows the command or
  flag in its place (:meth:`arcade_server.client.ApiError.cli_message`). Write the hint into
  the message with an f-string (its ``str`` is the REST form) and pass it in ``hints``.
* :class:`MigrationError`: the database could not be brought to the current schema. Caught by
  whoever starts the server (``arcade server`` prints it and exits non-zero).
* :class:`StartupError`: a listener of the server could not start. Caught like
  :class:`MigrationError`.
* :class:`BatcherError`: a group-commit batcher refused an item (it is closed: the server is
  shutting down) or lost its result (a flush function bug). It fails only the request that
  submitted the item; the stream handlers that submit log it with the rest of their errors.

The last three are also :class:`RuntimeError`\\ s, as they were before they had names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arcade_core import ArcadeError

__all__ = [
    "AgentTimeout",
    "AlreadyExists",
    "BatcherError",
    "Conflict",
    "Forbidden",
    "Hint",
    "IndexUnavailable",
    "Invalid",
    "MigrationError",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "ServiceError",
    "SettingsError",
    "StartupError",
    "Unauthorized",
]


class ServerError(ArcadeError):
    """Root of every error the Arcade server raises on purpose."""


@dataclass(frozen=True)
class Hint:
    """One way to fix an error: ``rest``, the route or request field as the message names it
    (``GET /api/v1/agents``, ``"reset_config": true``), and ``cli``, the same as an ``arcade``
    command or flag (``arcade agents``, ``--reset-config``). ``str(hint)`` is ``rest``, so an
    f-string puts the REST form in the message; the CLI puts ``cli`` in its place."""

    rest: str
    cli: str

    def __str__(self) -> str:
        return self.rest

    def to_dict(self) -> dict[str, str]:
        return {"rest": self.rest, "cli": self.cli}


class ServiceError(ServerError):
    """A request the service layer refuses: ``message`` says what is wrong and what to do;
    ``detail`` is JSON-ready extra data; ``hints`` are the :class:`Hint`\\ s whose REST form
    the message names. Mapped to :attr:`status_code` (REST) and :attr:`grpc_code` (the name of
    a ``grpc.StatusCode``)."""

    status_code = 400
    grpc_code = "INVALID_ARGUMENT"
    #: Extra HTTP response headers (``WWW-Authenticate`` for a 401).
    headers: dict[str, str] | None = None

    def __init__(self, message: str, detail: Any = None, *, hints: Sequence[Hint] = ()
                 ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hints = tuple(hints)


class NotFound(ServiceError):
    """An unknown agent, plugin, version, assignment or job."""

    status_code = 404
    grpc_code = "NOT_FOUND"


class Conflict(ServiceError):
    """The request clashes with the current state (republish with other content, delete of an
    assigned version, install of a disabled plugin, cancel of a finished job)."""

    status_code = 409
    grpc_code = "FAILED_PRECONDITION"


class Invalid(ServiceError):
    """The request is well-formed but its content is wrong (bad spec, config or wheel)."""

    status_code = 422
    grpc_code = "INVALID_ARGUMENT"


class PayloadTooLarge(ServiceError):
    """An upload is over the configured maximum size."""

    status_code = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class AlreadyExists(ServiceError):
    """An agent id that another live identity holds (enrollment)."""

    status_code = 409
    grpc_code = "ALREADY_EXISTS"


class Unauthorized(ServiceError):
    """No credential (a bearer token, an enrollment token, an agent certificate), or one the
    server does not accept (unknown, expired, used up, revoked)."""

    status_code = 401
    grpc_code = "UNAUTHENTICATED"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    """A valid credential whose role does not allow the call (the message names the role
    needed)."""

    status_code = 403
    grpc_code = "PERMISSION_DENIED"


class AgentTimeout(ServiceError):
    """An agent did not answer a request relayed on its stream in time (a log read)."""

    status_code = 504
    grpc_code = "DEADLINE_EXCEEDED"


class IndexUnavailable(ServiceError):
    """A package index an import reads could not be read in time (unreachable, an HTTP
    error, too slow): the fix is on the index's side or the network's, not in the request."""

    status_code = 502
    grpc_code = "UNAVAILABLE"


class SettingsError(ServerError, ValueError):
    """A setting has a value the server cannot use; the message names the setting. Caught by
    ``arcade server`` (``__main__``), which prints it and exits 2."""


class MigrationError(ServerError, RuntimeError):
    """Applying the database migrations failed (or was attempted in an unsupported way)."""


class StartupError(ServerError, RuntimeError):
    """A listener (REST or gRPC) stopped while the server was starting."""


class BatcherError(ServerError, RuntimeError):
    """A :class:`~arcade_server.db.batcher.Batcher` could not give an item its result: the
    batcher was closed (server shutdown), or its flush function returned the wrong number of
    results."""
