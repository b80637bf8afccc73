"""Request bodies of the REST API (pydantic): what the OpenAPI page at ``/docs`` shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["InstallRequest", "SelectorInstallRequest", "SelectorRemoveRequest"]


class InstallRequest(BaseModel):
    """Install ``name@spec`` on one agent (upgrade, downgrade or reconfigure if present)."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="name, name@1.2.0 or name@>=1.2,<2",
                        examples=["arcade-cpu@1.0.0"])
    config: dict[str, Any] | None = Field(
        default=None, description="plugin config; validated, defaults applied"
    )
    isolation: Literal["inline", "process"] | None = Field(
        default=None, description="default: the plugin manifest's isolation"
    )


class SelectorInstallRequest(InstallRequest):
    """Install on every agent whose labels include all of ``selector`` ({} = every agent)."""

    selector: dict[str, str] = Field(default_factory=dict, examples=[{"role": "web"}])


class SelectorRemoveRequest(BaseModel):
    """Uninstall ``plugin`` from every agent matching ``selector`` that has it."""

    model_config = ConfigDict(extra="forbid")

    selector: dict[str, str] = Field(default_factory=dict)
    plugin: str
