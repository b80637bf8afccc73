"""Response bodies of ``/api/v1/plugins``: plugins, versions, their wheels and manifests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from arcade_core.states import Isolation, PluginState

from .signing import Signer

__all__ = [
    "Manifest",
    "PluginDetail",
    "PluginSummary",
    "PluginVersion",
    "PublishedVersion",
    "Release",
    "ValidateResult",
    "VersionAgent",
    "VersionDetail",
    "Wheel",
    "WouldRecord",
]


class Wheel(BaseModel):
    """One wheel of a version (the plugin wheel first, then its dependencies)."""

    filename: str
    sha256: str
    size: int = Field(description="bytes")
    name: str
    version: str


class Manifest(BaseModel):
    """The plugin's ``arcade-plugin.json`` as published (see ``arcade_core``'s manifest)."""

    model_config = ConfigDict(extra="allow")

    description: str = ""
    type: str = "collector"
    config_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the plugin's config")
    default_config: dict[str, Any] = Field(default_factory=dict)
    isolation: Isolation = Isolation.INLINE
    interval: int | float | None = Field(default=None, description="collect interval, seconds")
    resources: dict[str, Any] = Field(default_factory=dict)


class PluginVersion(BaseModel):
    """One published version: its metadata, manifest and wheels (in install order)."""

    name: str
    version: str
    summary: str
    description: str
    type: str
    entry_point: str
    requires_dist: list[str]
    requires_python: str | None
    manifest: Manifest | None
    sha256: str = Field(description="the plugin wheel's sha256")
    filename: str
    size: int
    created_at: float = Field(description="seconds since the epoch")
    wheels: list[Wheel]
    signers: list[Signer] = Field(description="the keys that signed this version's statement")


class PublishedVersion(PluginVersion):
    """``POST /plugins``: the version recorded (201) or already there, identical (200)."""

    created: bool = Field(description="false for an identical re-publish")
    ignored: list[str] = Field(description="uploaded wheels nothing requires (not recorded)")


class VersionAgent(BaseModel):
    """An agent that should (``desired``) or does run the version."""

    agent: str
    desired: bool
    state: PluginState | None = Field(description="what the agent last reported, if anything")


class VersionDetail(PluginVersion):
    """``GET /plugins/{name}/versions/{version}``."""

    agents: list[VersionAgent]


class PluginSummary(BaseModel):
    """A plugin with its versions (newest first) and the latest version's description."""

    name: str
    enabled: bool = Field(description="false: new assignments are refused")
    latest: str | None
    summary: str
    description: str
    type: str
    versions: list[str]
    created_at: float
    updated_at: float


class Release(BaseModel):
    """One version in a plugin's list of releases."""

    version: str
    sha256: str
    size: int
    created_at: float
    type: str
    summary: str
    signers: list[Signer] = Field(description="the keys that signed this version")


class PluginDetail(PluginSummary):
    """``GET /plugins/{name}``."""

    releases: list[Release]


class WouldRecord(BaseModel):
    """What publishing the uploaded wheels would record."""

    name: str
    version: str
    summary: str
    entry_point: str
    requires_dist: list[str]
    requires_python: str | None
    manifest: Manifest | None
    sha256: str
    filename: str
    size: int
    wheels: list[Wheel]
    ignored: list[str]


class ValidateResult(BaseModel):
    """``POST /plugins/validate``: the dry run of a publish that would succeed (or answer 200
    or 409 when the version exists: ``existing`` says which)."""

    valid: bool
    would_record: WouldRecord
    existing: str | None = Field(
        default=None, description="only when name@version is already published")
