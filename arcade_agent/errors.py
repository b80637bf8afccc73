"""The agent's exceptions: one root, :class:`AgentError`, with subclasses that say who
should catch them.

* :class:`AgentConfigError` — a setting is missing, unknown or malformed; the command line
  (or the embedding application) catches it and tells the operator what to fix.
* :class:`AgentNotStarted` — a part of an :class:`~arcade_agent.Agent` was used before
  ``start()`` (or after ``stop()``); a bug in the embedding code.
* :class:`DownloadError` — a wheel could not be downloaded (refused by the server, or failed
  after retries); the reconciler and the job runner catch it and report the plugin failed.
* :class:`HashMismatch` — a :class:`DownloadError`: the bytes the server sent do not hash
  to the sha256 the desired state named.
* :class:`InvalidWheelRef` — the server named a wheel by an invalid sha256 or filename; the
  downloader refuses it like a :class:`DownloadError`.
* :class:`InvalidDesiredPlugin` — an entry of the server's desired state cannot be applied
  as sent (bad config JSON, unknown isolation, no wheels); the reconciler reports that one
  plugin failed and applies the rest.
* :class:`UntrustedPlugin` — a plugin version is not signed by a key the agent trusts
  (:mod:`arcade_agent.trust`); the reconciler reports it failed before downloading anything.
* :class:`InvalidBeforeResult` — a job's ``before`` hook returned something of the wrong
  shape; the job runner fails the job with it.

Every one is an :class:`arcade_core.ArcadeError`, so ``except ArcadeError`` still catches
anything Arcade raises on purpose.
"""

from __future__ import annotations

from arcade_core import ArcadeError

__all__ = [
    "AgentConfigError",
    "AgentError",
    "AgentNotStarted",
    "DownloadError",
    "HashMismatch",
    "InvalidBeforeResult",
    "InvalidDesiredPlugin",
    "InvalidWheelRef",
    "UntrustedPlugin",
]


class AgentError(ArcadeError):
    """Root of every error the agent raises on purpose."""


class AgentConfigError(AgentError, ValueError):
    """A setting of the agent is missing, unknown or malformed."""


class AgentNotStarted(AgentError, RuntimeError):
    """A part of the agent was used before it was started."""


class DownloadError(AgentError):
    """A wheel could not be downloaded (refused by the server, or failed after retries)."""

    def __init__(self, filename: str, sha256: str, message: str) -> None:
        super().__init__(f"download of {filename} (sha256 {sha256[:12]}…) failed: {message}")
        self.filename = filename
        self.sha256 = sha256


class HashMismatch(DownloadError):
    """The bytes the server sent do not hash to the sha256 the desired state named."""

    def __init__(self, filename: str, expected: str, actual: str) -> None:
        AgentError.__init__(
            self,
            f"wheel {filename} refused: sha256 mismatch (expected {expected}, got {actual}); "
            "the blob on the server is corrupt or was altered",
        )
        self.filename = filename
        self.sha256 = expected
        self.actual = actual


class InvalidWheelRef(AgentError, ValueError):
    """A wheel was named by an invalid sha256 or filename."""


class InvalidDesiredPlugin(AgentError, ValueError):
    """One plugin of the server's desired state cannot be applied as sent."""


class InvalidBeforeResult(AgentError, ValueError):
    """A job's ``before`` hook returned something other than ``None`` or the documented dict."""


class UntrustedPlugin(AgentError):
    """A plugin version lacks a valid signature by a key this agent trusts for its name."""
