"""Bodies of the package index routes: ``POST /plugins/import`` and ``GET
/plugins/{name}/updates`` (issue 15, part "index")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ...services.imports import MAX_REQUIREMENT_LENGTH
from .plugins import PublishedVersion

__all__ = ["ImportRequest", "ImportedVersion", "PluginUpdates"]


class ImportRequest(BaseModel):
    """What to import, and from which index."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"requirement": "arcade-foo==1.2"},
        {"requirement": "arcade-foo>=1,<2", "index_url": "https://pypi.example.com/simple/"},
    ]})

    requirement: str = Field(
        max_length=MAX_REQUIREMENT_LENGTH,
        description="a PEP 508 requirement on the plugin's project, e.g. arcade-foo==1.2 "
        "(no URL, no marker); the newest version that fits is imported")
    index_url: str | None = Field(
        default=None, max_length=1000,
        description="a PEP 503/691 index, http(s) only; default: the server's index_url "
        "setting (https://pypi.org/simple/ unless changed)")


class ImportedVersion(PublishedVersion):
    """The version published from the index (201 new, 200 identical re-publish)."""

    index_url: str = Field(description="the index it was imported from")
    requirement: str = Field(description="the requirement as resolved")
    platforms: list[str] = Field(
        description="the platforms resolved for: those the agents report, or the server's own "
        "while no agent has registered (see note)")
    note: str | None = Field(default=None, description="anything the caller should know")


class PluginUpdates(BaseModel):
    """The versions an index has beyond the newest published one."""

    name: str
    index_url: str = Field(description="the index asked: the one the newest imported version "
                           "came from, or ?index_url=")
    published: str | None = Field(description="the newest published version")
    latest: str | None = Field(description="the newest version with wheels on the index "
                               "(pre-releases only when the published one is one)")
    newer: list[str] = Field(description="versions on the index newer than the published "
                             "one, newest first")
    up_to_date: bool
