"""Bodies of the signing routes: a version's signers, a signature to add, a name's keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

__all__ = ["PluginKey", "PluginKeys", "PluginKeysRequest", "SignatureRequest", "Signer"]

_BASE64 = r"^[A-Za-z0-9+/=\s]*$"
_KEY_HELP = "the base64 of the raw 32-byte ed25519 public key (the line of NAME.pub)"


class Signer(BaseModel):
    """One signature of a version: who signed (key id) and when it was added."""

    key_id: str = Field(description="first 16 hex digits of the sha256 of the public key")
    created_at: float = Field(description="seconds since the epoch")


class SignatureRequest(BaseModel):
    """``POST /plugins/{name}/versions/{version}/signatures``: a signature of the version's
    statement (``arcade_core.signing.statement``) and the key that made it."""

    public_key: str = Field(max_length=200, pattern=_BASE64, description=_KEY_HELP)
    signature: str = Field(max_length=200, pattern=_BASE64,
                           description="the base64 of the 64-byte ed25519 signature")


class PluginKey(BaseModel):
    """A key a claimed plugin name accepts new versions signed by."""

    key_id: str
    public_key: str = Field(description=_KEY_HELP)
    added_at: float = Field(description="seconds since the epoch")


class PluginKeys(BaseModel):
    """``GET/PUT /plugins/{name}/keys``: the publish policy's claim of a name (no keys: the
    name is not claimed, and accepts unsigned versions)."""

    name: str
    keys: list[PluginKey]


class PluginKeysRequest(BaseModel):
    """``PUT /plugins/{name}/keys``: the keys the name accepts from now on (replaces them;
    ``[]`` releases the claim)."""

    keys: list[Annotated[str, Field(max_length=200)]] = Field(
        max_length=32, description=f"each {_KEY_HELP}")
