"""Jobs as tests of the API's job routes need them, written with the node's own store."""

from __future__ import annotations

import time

from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.models import utcnow


def running_elsewhere() -> Job:
    """A replay of every DLQ entry, ``running`` under a live lease (an hour ahead) of another node,
    ``api-elsewhere``: the node under test follows or cancels it but never runs or takes it over."""
    return Job(id=new_job_id(), kind=JobKind.REPLAY, state=JobState.RUNNING, selection=Selection(mode="all"),
               started_by="test", created_at=utcnow(), runner="api-elsewhere", lease_until=time.time() + 3600)
