"""Response bodies of ``/api/v1/jobs``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from arcade_core.states import Isolation, JobStatus, RecordStatus, Stage

__all__ = ["CancelledJob", "CreatedJob", "Job", "JobRecord", "JobSummary"]


class JobRecord(BaseModel):
    """One plugin entry of a job and how it went."""

    index: int
    plugin: str
    version: str
    stage: Stage
    order: int
    config: dict[str, Any]
    isolation: Isolation
    status: RecordStatus
    result: Any = Field(description="what the plugin's hook returned (JSON), or null")
    error: str
    started_at: float | None
    completed_at: float | None


class JobSummary(BaseModel):
    """A job as ``GET /jobs`` lists it (without env, output and records)."""

    id: str
    agent: str
    status: JobStatus
    commands: list[str]
    timeout: float = Field(description="seconds the commands may run")
    exit_code: int | None
    error: str
    output_size: int = Field(description="bytes of output the commands produced in all")
    created_at: float
    dispatched_at: float | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    cancel_requested_at: float | None


class Job(JobSummary):
    """``GET /jobs/{job_id}``: the job with its output tail and plugin records."""

    env: dict[str, str]
    output_tail: str = Field(description="the end of the output")
    plugins: list[JobRecord]


class CreatedJob(Job):
    """``POST /jobs`` (201)."""

    connected: bool = Field(description="the job was handed to the agent's open stream")


class CancelledJob(Job):
    """``POST /jobs/{job_id}/cancel``."""

    cancel_sent: bool = Field(description="the agent was asked to stop the job")
