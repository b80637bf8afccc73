"""The errors and defaults of :mod:`arcade_server.client` (re-exported there): what a failed
call to the REST API raises, and where the API is when nobody says."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DEFAULT_API", "LOGIN_HINT", "ApiError", "ApiUnauthorized", "ApiUnreachable",
           "default_api_url"]

DEFAULT_API = "http://127.0.0.1:8080"
#: How to give the CLI a token (the end of a 401's message).
LOGIN_HINT = ("log in with `arcade login` (or pass --token / set ARCADE_TOKEN; the first admin "
              "token is in the server's <home>/admin-token)")


def default_api_url() -> str:
    """``$ARCADE_API``, else ``http://127.0.0.1:8080``."""
    return os.environ.get("ARCADE_API") or DEFAULT_API


class ApiError(Exception):
    """The API answered with an error status; ``message`` is its ``error`` text, ``hints``
    its ``hints`` (``[{"rest": ..., "cli": ...}]``: the calls the message names, as ``arcade``
    commands)."""

    def __init__(self, status: int, message: str, detail: Any = None,
                 hints: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.hints = [{"rest": str(h["rest"]), "cli": str(h["cli"])} for h in hints
                      if isinstance(h, dict) and h.get("rest") and h.get("cli")
                      ] if isinstance(hints, list) else []

    @property
    def cli_message(self) -> str:
        """The message for a command-line user: each hint's REST form (a route, a request
        field) replaced by its ``arcade`` command or flag in backquotes."""
        message = self.message
        for hint in sorted(self.hints, key=lambda h: len(h["rest"]), reverse=True):
            message = message.replace(hint["rest"], f"`{hint['cli']}`")
        return message


class ApiUnreachable(ApiError):
    """Nothing answered at the API URL (server down, wrong --api, network)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the Arcade API at {url}: {reason}")
        self.url = url


class ApiUnauthorized(ApiError):
    """The server refused the credentials (none, unknown, expired or revoked): 401."""
