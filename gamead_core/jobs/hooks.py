"""What the job framework asks of the rest of gamead: a repair job's actions (the doctor) and the audit trail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gamead_core.jobs.model import Job


class RepairActions(Protocol):
    """What a ``repair`` job needs (``gamead_core.doctor.repair.RepairOps``): the actions to take, and taking one."""

    async def plan(self) -> tuple[list[list[Any]], dict[str, int]]:
        """The repair actions for what the doctor finds now, and the count of each kind of problem it found."""
        ...

    async def act(self, item: list[Any], job_id: str,
                  wait: Callable[[float, str], Awaitable[None]] | None = None) -> str:
        """Take one action (fenced); returns its ``Mark``. ``wait(seconds, what for)``: how an action that must
        wait does (the job says what it waits for and keeps its lease meanwhile)."""
        ...


class JobAuditHook(Protocol):
    """What the job framework tells the audit trail, for every kind of job (``gamead_core.audit.JobAudit``).

    ``job_started`` runs before the job is stored; if it raises, the job is not created (the audit trail fails
    closed). ``job_ended`` runs once the job has ended (succeeded, failed, cancelled, interrupted); it does its
    own retrying and never raises. ``job_taken_over`` runs once another node has resumed a job (never raises)."""

    async def job_started(self, job: Job) -> None: ...

    async def job_ended(self, job: Job) -> None: ...

    async def job_taken_over(self, job: Job, from_node: str | None) -> None:
        """``job`` was just resumed by ``job.runner`` after ``from_node``'s lease expired; never raises."""
        ...
