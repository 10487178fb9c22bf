"""Who is acting in the request being served: set by the API's audit middleware for every ``/v1`` write, read
by whatever writes an audit record while serving it (a route, or the job framework's hook), so a record says who
without every caller passing it down.

A :class:`contextvars.ContextVar`: each request runs in its own context, and a task started while serving it (an
operator job) gets a copy, so a job's start record is written with the request's ids.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ActionContext:
    """One ``/v1`` write being served. ``state`` is the ASGI scope's ``state``: the gate puts the caller there
    (``principal``, with ``name`` and ``role``) once it has identified it."""

    request_id: str
    method: str
    path: str
    client: str | None
    state: dict[str, Any] = field(default_factory=dict)
    #: the request's handler (or the job framework) wrote the action's record
    recorded: bool = False
    #: the handler said this request changes nothing (a dry run): no record
    not_an_action: bool = False
    #: stream sequence of this request's ``accepted`` record of an action that is not a job's start (a job started is
    #: carried out whatever the request's answer; a job's cancel is not): a later ``failed`` record of the request
    #: names it in ``undoes``
    accepted_seq: int | None = None
    #: the job that accepted record names (a ``job.cancel``'s): the ``failed`` record names it too, so a trail read
    #: by job (``gamead audit --job``) shows the failure beside the record it undoes
    accepted_job_id: str | None = None

    @property
    def principal(self) -> Any:
        return self.state.get("principal")

    @property
    def actor(self) -> str:
        return str(getattr(self.principal, "name", None) or "anonymous")

    @property
    def role(self) -> str | None:
        role = getattr(self.principal, "role", None)
        return str(role) if role else None


_CURRENT: ContextVar[ActionContext | None] = ContextVar("gamead_audit_action", default=None)


def current() -> ActionContext | None:
    """The action being served, or None outside a ``/v1`` write (a background task of the node's own)."""
    return _CURRENT.get()


def enter(ctx: ActionContext) -> Any:
    """Make ``ctx`` the current action; returns the token for :func:`leave`."""
    return _CURRENT.set(ctx)


def leave(token: Any) -> None:
    _CURRENT.reset(token)


def not_an_action() -> None:
    """Say that the request being served changes nothing (a dry run): it gets no audit record."""
    ctx = current()
    if ctx is not None:
        ctx.not_an_action = True
