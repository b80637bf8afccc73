from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PluginState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLUGIN_STATE_UNSPECIFIED: _ClassVar[PluginState]
    PLUGIN_STATE_PENDING: _ClassVar[PluginState]
    PLUGIN_STATE_DOWNLOADING: _ClassVar[PluginState]
    PLUGIN_STATE_INSTALLING: _ClassVar[PluginState]
    PLUGIN_STATE_RUNNING: _ClassVar[PluginState]
    PLUGIN_STATE_RESTARTING: _ClassVar[PluginState]
    PLUGIN_STATE_FAILED: _ClassVar[PluginState]
    PLUGIN_STATE_STOPPED: _ClassVar[PluginState]
    PLUGIN_STATE_REMOVED: _ClassVar[PluginState]
    PLUGIN_STATE_DEGRADED: _ClassVar[PluginState]
    PLUGIN_STATE_UNTRUSTED: _ClassVar[PluginState]
    PLUGIN_STATE_DRIFTED: _ClassVar[PluginState]

class Isolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_UNSPECIFIED: _ClassVar[Isolation]
    ISOLATION_INLINE: _ClassVar[Isolation]
    ISOLATION_PROCESS: _ClassVar[Isolation]
    ISOLATION_EXEC: _ClassVar[Isolation]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCEEDED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
    JOB_STATUS_TIMED_OUT: _ClassVar[JobStatus]

class RecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATUS_UNSPECIFIED: _ClassVar[RecordStatus]
    RECORD_STATUS_PENDING: _ClassVar[RecordStatus]
    RECORD_STATUS_RUNNING: _ClassVar[RecordStatus]
    RECORD_STATUS_SUCCEEDED: _ClassVar[RecordStatus]
    RECORD_STATUS_FAILED: _ClassVar[RecordStatus]
    RECORD_STATUS_SKIPPED: _ClassVar[RecordStatus]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_BEFORE: _ClassVar[Stage]
    STAGE_AFTER: _ClassVar[Stage]
    STAGE_ON_SUCCESS: _ClassVar[Stage]
    STAGE_ON_FAILURE: _ClassVar[Stage]
    STAGE_NOTIFY: _ClassVar[Stage]
PLUGIN_STATE_UNSPECIFIED: PluginState
PLUGIN_STATE_PENDING: PluginState
PLUGIN_STATE_DOWNLOADING: PluginState
PLUGIN_STATE_INSTALLING: PluginState
PLUGIN_STATE_RUNNING: PluginState
PLUGIN_STATE_RESTARTING: PluginState
PLUGIN_STATE_FAILED: PluginState
PLUGIN_STATE_STOPPED: PluginState
PLUGIN_STATE_REMOVED: PluginState
PLUGIN_STATE_DEGRADED: PluginState
PLUGIN_STATE_UNTRUSTED: PluginState
PLUGIN_STATE_DRIFTED: PluginState
ISOLATION_UNSPECIFIED: Isolation
ISOLATION_INLINE: Isolation
ISOLATION_PROCESS: Isolation
ISOLATION_EXEC: Isolation
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
JOB_STATUS_TIMED_OUT: JobStatus
RECORD_STATUS_UNSPECIFIED: RecordStatus
RECORD_STATUS_PENDING: RecordStatus
RECORD_STATUS_RUNNING: RecordStatus
RECORD_STATUS_SUCCEEDED: RecordStatus
RECORD_STATUS_FAILED: RecordStatus
RECORD_STATUS_SKIPPED: RecordStatus
STAGE_UNSPECIFIED: Stage
STAGE_BEFORE: Stage
STAGE_AFTER: Stage
STAGE_ON_SUCCESS: Stage
STAGE_ON_FAILURE: Stage
STAGE_NOTIFY: Stage

class AgentMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "status", "metrics", "job_event", "logs")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    JOB_EVENT_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    register: Register
    heartbeat: Heartbeat
    status: PluginStatusReport
    metrics: MetricBatch
    job_event: JobEvent
    logs: PluginLogs
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., status: _Optional[_Union[PluginStatusReport, _Mapping]] = ..., metrics: _Optional[_Union[MetricBatch, _Mapping]] = ..., job_event: _Optional[_Union[JobEvent, _Mapping]] = ..., logs: _Optional[_Union[PluginLogs, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("agent_id", "hostname", "ip", "os", "arch", "agent_version", "python_version", "labels", "plugins", "applied_revision", "jobs", "jobs_enabled", "jobs_allow")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_REVISION_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    JOBS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    JOBS_ALLOW_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    hostname: str
    ip: str
    os: str
    arch: str
    agent_version: str
    python_version: str
    labels: _containers.ScalarMap[str, str]
    plugins: _containers.RepeatedCompositeFieldContainer[PluginStatus]
    applied_revision: int
    jobs: _containers.RepeatedScalarFieldContainer[str]
    jobs_enabled: bool
    jobs_allow: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., hostname: _Optional[str] = ..., ip: _Optional[str] = ..., os: _Optional[str] = ..., arch: _Optional[str] = ..., agent_version: _Optional[str] = ..., python_version: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., plugins: _Optional[_Iterable[_Union[PluginStatus, _Mapping]]] = ..., applied_revision: _Optional[int] = ..., jobs: _Optional[_Iterable[str]] = ..., jobs_enabled: bool = ..., jobs_allow: _Optional[_Iterable[str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("applied_revision", "sent_at")
    APPLIED_REVISION_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    applied_revision: int
    sent_at: float
    def __init__(self, applied_revision: _Optional[int] = ..., sent_at: _Optional[float] = ...) -> None: ...

class PluginStatus(_message.Message):
    __slots__ = ("name", "version", "state", "error", "restarts", "isolation", "sha256", "error_at", "errors", "last_collect_at", "pid", "rss", "drift", "drift_at", "local", "limits", "malformed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_COLLECT_AT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RSS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_AT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MALFORMED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    state: PluginState
    error: str
    restarts: int
    isolation: Isolation
    sha256: str
    error_at: float
    errors: int
    last_collect_at: float
    pid: int
    rss: int
    drift: _containers.RepeatedScalarFieldContainer[str]
    drift_at: float
    local: bool
    limits: str
    malformed: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[_Union[PluginState, str]] = ..., error: _Optional[str] = ..., restarts: _Optional[int] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., sha256: _Optional[str] = ..., error_at: _Optional[float] = ..., errors: _Optional[int] = ..., last_collect_at: _Optional[float] = ..., pid: _Optional[int] = ..., rss: _Optional[int] = ..., drift: _Optional[_Iterable[str]] = ..., drift_at: _Optional[float] = ..., local: bool = ..., limits: _Optional[str] = ..., malformed: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("seq", "time", "level", "text")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: float
    level: str
    text: str
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[float] = ..., level: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PluginLogs(_message.Message):
    __slots__ = ("request_id", "plugin", "lines", "error", "last_seq")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    plugin: str
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    error: str
    last_seq: int
    def __init__(self, request_id: _Optional[str] = ..., plugin: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., error: _Optional[str] = ..., last_seq: _Optional[int] = ...) -> None: ...

class PluginStatusReport(_message.Message):
    __slots__ = ("revision", "plugins", "complete")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    plugins: _containers.RepeatedCompositeFieldContainer[PluginStatus]
    complete: bool
    def __init__(self, revision: _Optional[int] = ..., plugins: _Optional[_Iterable[_Union[PluginStatus, _Mapping]]] = ..., complete: bool = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("plugin", "name", "value", "labels", "unit", "timestamp")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    name: str
    value: float
    labels: _containers.ScalarMap[str, str]
    unit: str
    timestamp: float
    def __init__(self, plugin: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ..., unit: _Optional[str] = ..., timestamp: _Optional[float] = ...) -> None: ...

class MetricBatch(_message.Message):
    __slots__ = ("metrics", "dropped")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    dropped: int
    def __init__(self, metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class JobPluginRecord(_message.Message):
    __slots__ = ("index", "plugin", "version", "stage", "order", "status", "result_json", "error", "started_at", "completed_at")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    index: int
    plugin: str
    version: str
    stage: Stage
    order: int
    status: RecordStatus
    result_json: str
    error: str
    started_at: float
    completed_at: float
    def __init__(self, index: _Optional[int] = ..., plugin: _Optional[str] = ..., version: _Optional[str] = ..., stage: _Optional[_Union[Stage, str]] = ..., order: _Optional[int] = ..., status: _Optional[_Union[RecordStatus, str]] = ..., result_json: _Optional[str] = ..., error: _Optional[str] = ..., started_at: _Optional[float] = ..., completed_at: _Optional[float] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "status", "exit_code", "has_exit_code", "output_tail", "started_at", "finished_at", "error", "plugins", "output_size")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TAIL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: JobStatus
    exit_code: int
    has_exit_code: bool
    output_tail: str
    started_at: float
    finished_at: float
    error: str
    plugins: _containers.RepeatedCompositeFieldContainer[JobPluginRecord]
    output_size: int
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., exit_code: _Optional[int] = ..., has_exit_code: bool = ..., output_tail: _Optional[str] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error: _Optional[str] = ..., plugins: _Optional[_Iterable[_Union[JobPluginRecord, _Mapping]]] = ..., output_size: _Optional[int] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "desired", "job", "cancel_job", "logs_request")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    CANCEL_JOB_FIELD_NUMBER: _ClassVar[int]
    LOGS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    desired: DesiredState
    job: Job
    cancel_job: CancelJob
    logs_request: LogsRequest
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., desired: _Optional[_Union[DesiredState, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., cancel_job: _Optional[_Union[CancelJob, _Mapping]] = ..., logs_request: _Optional[_Union[LogsRequest, _Mapping]] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("request_id", "plugin", "after", "limit")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    plugin: str
    after: int
    limit: int
    def __init__(self, request_id: _Optional[str] = ..., plugin: _Optional[str] = ..., after: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("agent_id", "server_version", "heartbeat_interval")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    server_version: str
    heartbeat_interval: float
    def __init__(self, agent_id: _Optional[str] = ..., server_version: _Optional[str] = ..., heartbeat_interval: _Optional[float] = ...) -> None: ...

class WheelRef(_message.Message):
    __slots__ = ("filename", "sha256", "size")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    filename: str
    sha256: str
    size: int
    def __init__(self, filename: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class DesiredPlugin(_message.Message):
    __slots__ = ("name", "version", "isolation", "config_json", "wheels", "interval", "signatures", "resources")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    WHEELS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    isolation: Isolation
    config_json: str
    wheels: _containers.RepeatedCompositeFieldContainer[WheelRef]
    interval: float
    signatures: _containers.RepeatedCompositeFieldContainer[PluginSignature]
    resources: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., config_json: _Optional[str] = ..., wheels: _Optional[_Iterable[_Union[WheelRef, _Mapping]]] = ..., interval: _Optional[float] = ..., signatures: _Optional[_Iterable[_Union[PluginSignature, _Mapping]]] = ..., resources: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PluginSignature(_message.Message):
    __slots__ = ("key_id", "signature")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    signature: bytes
    def __init__(self, key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("revision", "plugins")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    revision: int
    plugins: _containers.RepeatedCompositeFieldContainer[DesiredPlugin]
    def __init__(self, revision: _Optional[int] = ..., plugins: _Optional[_Iterable[_Union[DesiredPlugin, _Mapping]]] = ...) -> None: ...

class JobPlugin(_message.Message):
    __slots__ = ("index", "name", "version", "stage", "order", "config_json", "isolation", "wheels", "signatures")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    WHEELS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    version: str
    stage: Stage
    order: int
    config_json: str
    isolation: Isolation
    wheels: _containers.RepeatedCompositeFieldContainer[WheelRef]
    signatures: _containers.RepeatedCompositeFieldContainer[PluginSignature]
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., stage: _Optional[_Union[Stage, str]] = ..., order: _Optional[int] = ..., config_json: _Optional[str] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., wheels: _Optional[_Iterable[_Union[WheelRef, _Mapping]]] = ..., signatures: _Optional[_Iterable[_Union[PluginSignature, _Mapping]]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "commands", "env", "timeout", "plugins")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    commands: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    timeout: float
    plugins: _containers.RepeatedCompositeFieldContainer[JobPlugin]
    def __init__(self, job_id: _Optional[str] = ..., commands: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., timeout: _Optional[float] = ..., plugins: _Optional[_Iterable[_Union[JobPlugin, _Mapping]]] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("agent_id", "sha256", "offset")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    sha256: str
    offset: int
    def __init__(self, agent_id: _Optional[str] = ..., sha256: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class WheelChunk(_message.Message):
    __slots__ = ("data", "offset", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., total_size: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token", "agent_id", "csr_pem")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    token: str
    agent_id: str
    csr_pem: str
    def __init__(self, token: _Optional[str] = ..., agent_id: _Optional[str] = ..., csr_pem: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem", "not_after", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_pem: str
    not_after: float
    labels: _containers.ScalarMap[str, str]
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ..., not_after: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: str
    def __init__(self, csr_pem: _Optional[str] = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem", "not_after")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_pem: str
    not_after: float
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ..., not_after: _Optional[float] = ...) -> None: ...
