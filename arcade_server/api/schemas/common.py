"""What every route shares: the one :class:`Error` body, the ``responses=`` tables, and
:func:`stated` for limits the services enforce.

Every error the API answers (a service error, request validation, an unknown route, a wrong
method, an upload over the limit, a bug) is ``{"error": "...", "detail": ...}``: ``error`` says
what is wrong and what to do, ``detail`` is JSON-ready extra data or ``null``. An error whose
fix is another call also has ``hints``: each names that call as the message does (``rest``)
and as the ``arcade`` command or flag that does it (``cli``), which the CLI prints instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ERROR_STATUSES", "Error", "ErrorHint", "Health", "errors", "stated"]


class ErrorHint(BaseModel):
    """One way to fix an error, as the message names it and as an ``arcade`` command."""

    rest: str = Field(description="the route or request field, exactly as `error` names it",
                      examples=["GET /api/v1/agents"])
    cli: str = Field(description="the same as an `arcade` command or flag",
                     examples=["arcade agents"])


class Error(BaseModel):
    """Every error answer of the API (4xx and 5xx)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": "no agent with id 'web-1' has registered; list agents with GET /api/v1/agents",
         "detail": None,
         "hints": [{"rest": "GET /api/v1/agents", "cli": "arcade agents"}]},
    ]})

    error: str = Field(description="what is wrong and what to do about it")
    detail: Any = Field(
        description="extra data, or null: for request validation (422) the list of problems, "
        "each {loc, msg, type}; for a refused upload {problems: [...]}; for 413 "
        "{max_upload_bytes}; for a conflict what it clashes with"
    )
    hints: list[ErrorHint] = Field(
        default_factory=list,
        description="present when the fix is another call: each `rest` text appears in "
        "`error`; a command-line client shows `cli` in its place",
    )


#: What each error status means, unless a route says more.
ERROR_STATUSES: dict[int, str] = {
    400: "the request cannot be understood",
    404: "the agent, plugin, version, assignment or job does not exist",
    405: "the method is not allowed on this path (the Allow header lists those that are)",
    409: "the request conflicts with the current state",
    413: "the upload is over the server's max_upload_bytes",
    422: "the request is invalid: a parameter or body field is missing or wrong, or its "
    "content is refused (error says which and what to fix)",
    502: "the package index could not be read (unreachable, an HTTP error, too slow)",
    504: "the agent did not answer in time",
}


def errors(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses, each with the :class:`Error` body.

    422 is always included (every route validates its input). ``described`` gives a route's
    own description of a status, keyed ``s404`` etc.
    """
    codes = sorted({*statuses, 422, *(int(key[1:]) for key in described)})
    return {
        code: {"model": Error,
               "description": described.get(f"s{code}") or ERROR_STATUSES.get(code, "error")}
        for code in codes
    }


def stated(**keywords: Any) -> dict[str, Any]:
    """``Field(json_schema_extra=stated(maxItems=100))``: a JSON Schema limit the service
    checks (with a message saying what to fix), stated in the document so it is true; pydantic
    does not check it a second time."""
    return keywords


class Health(BaseModel):
    """``GET /api/v1/health``: the server is up."""

    status: Literal["ok"]
    version: str
    connected_agents: int = Field(description="agents with an open stream to this process")
