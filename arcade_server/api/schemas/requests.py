"""Request bodies of the REST API (pydantic): what the OpenAPI page at ``/docs`` shows.

Limits the services check with their own messages (command counts, env names, label keys,
stages) are stated with :func:`~.common.stated`, so the document is true without a second
check here; limits set by the server's settings (``max_wait``, ``job_max_timeout``,
``metric_query_limit``) are written into the document by :mod:`arcade_server.api.openapi`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from arcade_core.states import Isolation, Stage

from ...limits import (
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_NAME_LENGTH,
    MAX_SPEC_LENGTH,
)
from ...services._overrides import MAX_INTERVAL, MIN_INTERVAL
from ...services.job_requests import (
    MAX_COMMAND_CHARS,
    MAX_COMMANDS,
    MAX_ENV,
    MAX_ENV_VALUE,
    MAX_ORDER,
    MAX_PLUGINS,
)
from .common import stated

__all__ = [
    "LABEL_KEY_PATTERN",
    "PLUGIN_NAME_PATTERN",
    "SPEC_PATTERN",
    "AssignmentUpdateRequest",
    "InstallRequest",
    "JobCreateRequest",
    "JobPluginRequest",
    "ResourceLimits",
    "SelectorInstallRequest",
    "SelectorRemoveRequest",
]

#: What ``arcade_server.limits.check_labels`` accepts as a label key (values: ≤ 256 chars):
#: ≤ 200 characters, the part after the last ``/`` ≤ 63.
#: (The pattern is a little looser than the service: it does not insist on the first
#: character when there is no ``/``; the service answers those 422.)
LABEL_KEY_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._/-]*/)?[A-Za-z0-9._-]{0,63}$"
#: A project name as ``arcade_core.normalize_name`` accepts it (PEP 508).
PLUGIN_NAME_PATTERN = r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$"
#: What ``arcade_core.parse_spec`` can accept: a name, then optionally ``@`` and a version or
#: range (checked by the service); surrounding whitespace is stripped.
SPEC_PATTERN = (r"^[\s\x1c-\x1f\x85]*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])"
                r"[\s\x1c-\x1f\x85]*(@[\s\S]*)?$")
_NO_NUL = r"^[^\x00]*$"

Selector = Annotated[dict[str, str], Field(
    default_factory=dict,
    description="labels an agent must all have ({} = every agent)",
    examples=[{"role": "web"}],
    json_schema_extra=stated(
        maxProperties=MAX_LABELS,
        propertyNames={"pattern": LABEL_KEY_PATTERN, "maxLength": MAX_LABEL_KEY},
        additionalProperties={"type": "string", "maxLength": MAX_LABEL_VALUE},
    ),
)]


_QUANTITY = ("a quantity; the service checks it and says what to write: ")


class ResourceLimits(BaseModel):
    """Resource limits of one assignment, each replacing the manifest's of that kind
    (enforced by the agent for process and exec plugins; inline plugins cannot be limited)."""

    model_config = ConfigDict(extra="forbid")

    memory: str | None = Field(
        default=None, strict=True, examples=["128Mi"],
        description=_QUANTITY + "bytes, with an optional suffix Ki Mi Gi Ti or k M G T")
    cpu: str | None = Field(
        default=None, strict=True, examples=["100m"],
        description=_QUANTITY + "cores (0.5) or millicores (100m)")
    disk: str | None = Field(
        default=None, strict=True, examples=["1Gi"],
        description=_QUANTITY + "bytes, as memory")

    def given(self) -> dict[str, str]:
        """The kinds given (``null`` ones left out)."""
        return {kind: value for kind, value in self.model_dump().items() if value is not None}


def _interval(description: str) -> Any:
    return Field(default=None, strict=True, allow_inf_nan=False, description=description,
                 examples=[5],
                 json_schema_extra=stated(minimum=MIN_INTERVAL, maximum=MAX_INTERVAL))


class InstallRequest(BaseModel):
    """Install ``name@spec`` on one agent (upgrade, downgrade or reconfigure if present)."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="name, name@1.2.0 or name@>=1.2,<2",
                        examples=["arcade-cpu@1.0.0"],
                        json_schema_extra=stated(pattern=SPEC_PATTERN,
                                                 maxLength=MAX_SPEC_LENGTH))
    config: dict[str, Any] | None = Field(
        default=None, description="plugin config; validated, defaults applied (omitted: "
        "each agent keeps its current config of the plugin, see reset_config)"
    )
    isolation: Isolation | None = Field(
        default=None, description="default: the agent's current isolation of the plugin, "
        "else the plugin manifest's; an exec plugin (its manifest names an executable) runs "
        "only with exec, a Python plugin only with inline or process"
    )
    interval: float | None = _interval(
        "seconds between collects (an exec plugin gets it in its config message), for every "
        "plugin whatever its config schema (omitted: the agent's current interval of the "
        "plugin unless reset_config; none set: the manifest's, else the agent's default)")
    resources: ResourceLimits | None = Field(
        default=None, description="resource limits overriding the manifest's, kind by kind "
        "(omitted: the agent's current ones are kept, an upgrade and reset_config too; {}: "
        "none beyond the manifest's)")
    reset_config: bool = Field(
        default=False, description="use the new version's default config and interval "
        "instead of keeping the agent's current ones (without config and without this: the "
        "config the operator set before, secrets included, is kept and validated against the "
        "new version)"
    )


class AssignmentUpdateRequest(BaseModel):
    """Change an assigned plugin in place, its version unchanged: what is omitted is kept."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = Field(
        default=None, description="the new config (validated, defaults applied; secret "
        "fields it omits keep their stored values); omitted or null: kept")
    interval: float | None = _interval(
        "seconds between collects; omitted: kept; null: back to the manifest's, else the "
        "agent's default")
    resources: ResourceLimits | None = Field(
        default=None, description="resource limits overriding the manifest's; omitted: kept; "
        "null or {}: no override")


class SelectorInstallRequest(InstallRequest):
    """Install on every agent whose labels include all of ``selector`` ({} = every agent)."""

    selector: Selector


class SelectorRemoveRequest(BaseModel):
    """Uninstall ``plugin`` from every agent matching ``selector`` that has it."""

    model_config = ConfigDict(extra="forbid")

    selector: Selector
    plugin: str = Field(description="the plugin's name",
                        json_schema_extra=stated(pattern=PLUGIN_NAME_PATTERN,
                                                 maxLength=MAX_NAME_LENGTH))


Command = Annotated[str, Field(json_schema_extra=stated(
    minLength=1, maxLength=MAX_COMMAND_CHARS, pattern=_NO_NUL))]


class JobPluginRequest(BaseModel):
    """One plugin entry: its own instance, with its own config, for the job's duration."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="name, name@1.2.0 or name@>=1.2,<2",
                        examples=["arcade-workspace@1.0.0"],
                        json_schema_extra=stated(pattern=SPEC_PATTERN,
                                                 maxLength=MAX_SPEC_LENGTH))
    stage: str = Field(description="before, after, on_success, on_failure or notify",
                       examples=["before"],
                       json_schema_extra=stated(enum=[s.value for s in Stage]))
    order: int = Field(default=0, strict=True, description="entries of a stage run in this order "
                       "(then in list order)",
                       json_schema_extra=stated(minimum=-MAX_ORDER, maximum=MAX_ORDER))
    config: dict[str, Any] | None = Field(
        default=None, description="this entry's config; validated, defaults applied"
    )
    isolation: str | None = Field(
        default=None, description="inline or process for a Python plugin, exec for an exec "
        "plugin (default: the plugin manifest's)",
        json_schema_extra=stated(enum=[*(i.value for i in Isolation), None]),
    )


class JobCreateRequest(BaseModel):
    """A job: shell commands run one after another on one agent (stopping at the first that
    fails), with plugin entries around them."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(description="the agent's id")
    commands: list[Command] = Field(
        description="shell commands", examples=[["make test"]],
        json_schema_extra=stated(minItems=1, maxItems=MAX_COMMANDS),
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="added to the agent's environment for the commands",
        json_schema_extra=stated(
            maxProperties=MAX_ENV,
            propertyNames={"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
            additionalProperties={"type": "string", "maxLength": MAX_ENV_VALUE,
                                  "pattern": _NO_NUL},
        ),
    )
    timeout: float | None = Field(
        default=None, strict=True,
        description="seconds the commands may run, above 0 and at most the server's "
        "job_max_timeout (default: the server's job_default_timeout)",
        json_schema_extra=stated(exclusiveMinimum=0),
    )
    plugins: list[JobPluginRequest] = Field(
        default_factory=list, json_schema_extra=stated(maxItems=MAX_PLUGINS))
