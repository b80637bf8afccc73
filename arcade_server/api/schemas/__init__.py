"""The REST API's typed contract: request bodies, response bodies and the one error body.

Every route declares its response model, so ``/openapi.json`` describes every body; every
error is :class:`Error`.
"""

from __future__ import annotations

from .agents import (
    ActualPlugin,
    Agent,
    AgentDetail,
    AgentPlugin,
    ConfigResult,
    DesiredPlugin,
    InstallOutcome,
    InstallResult,
    LogLine,
    Metric,
    PluginLogs,
    SelectorInstallResult,
    SelectorRemoveResult,
    UninstallResult,
)
from .auth import AuditEntry, CreatedToken, Token, TokenCreateRequest, WhoAmI
from .common import ERROR_STATUSES, Error, ErrorHint, Health, errors, stated
from .fleet import DeletedAgent, DeletedRows, FleetAgent, FleetStatus
from .jobs import CancelledJob, CreatedJob, Job, JobRecord, JobSummary
from .plugins import (
    Manifest,
    PluginDetail,
    PluginSummary,
    PluginVersion,
    PublishedVersion,
    Release,
    ValidateResult,
    VersionAgent,
    VersionDetail,
    Wheel,
    WouldRecord,
)
from .requests import (
    AssignmentUpdateRequest,
    InstallRequest,
    JobCreateRequest,
    JobPluginRequest,
    ResourceLimits,
    SelectorInstallRequest,
    SelectorRemoveRequest,
)
from .signing import PluginKey, PluginKeys, PluginKeysRequest, SignatureRequest, Signer

__all__ = [
    "ERROR_STATUSES",
    "ActualPlugin",
    "Agent",
    "AgentDetail",
    "AgentPlugin",
    "AssignmentUpdateRequest",
    "AuditEntry",
    "CancelledJob",
    "ConfigResult",
    "CreatedJob",
    "CreatedToken",
    "DeletedAgent",
    "DeletedRows",
    "DesiredPlugin",
    "Error",
    "ErrorHint",
    "FleetAgent",
    "FleetStatus",
    "Health",
    "InstallOutcome",
    "InstallRequest",
    "InstallResult",
    "Job",
    "JobCreateRequest",
    "JobPluginRequest",
    "JobRecord",
    "JobSummary",
    "LogLine",
    "Manifest",
    "Metric",
    "PluginDetail",
    "PluginKey",
    "PluginKeys",
    "PluginKeysRequest",
    "PluginLogs",
    "PluginSummary",
    "PluginVersion",
    "PublishedVersion",
    "Release",
    "ResourceLimits",
    "SelectorInstallRequest",
    "SelectorInstallResult",
    "SelectorRemoveRequest",
    "SelectorRemoveResult",
    "SignatureRequest",
    "Signer",
    "Token",
    "TokenCreateRequest",
    "UninstallResult",
    "ValidateResult",
    "VersionAgent",
    "VersionDetail",
    "Wheel",
    "WhoAmI",
    "WouldRecord",
    "errors",
    "stated",
]
