"""Cutting text that agents send to the size of its column."""

from __future__ import annotations

__all__ = ["clip", "clip_tail"]


def clip_tail(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text``."""
    return text if len(text) <= limit else text[-limit:]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
