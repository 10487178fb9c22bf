"""The audit trail: every operator action, who did it, what it chose, how many ads, how it went.

``model`` (the record and the pure rules: actions, filters, the refusal throttle), ``context`` (who is acting in
the request being served), ``log`` (stream ``GAMEAD_AUDIT``: write fail-closed, read newest first; the job
framework's hook). The API records refusals in ``gamead_core.api.audit_gate`` and serves ``GET /v1/audit``
from ``gamead_core.api.routes_audit``.

The names below are imported on first use (PEP 562): ``gamead audit`` reads ``model`` without loading nats-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE: dict[str, str] = {
    **dict.fromkeys(("ActionContext", "current", "not_an_action"), "gamead_core.audit.context"),
    **dict.fromkeys(("AuditLog", "AuditPage", "JobAudit", "audit_stream_config", "record_action"),
                    "gamead_core.audit.log"),
    **dict.fromkeys(("AuditAction", "AuditFilter", "AuditRecord", "RefusalThrottle", "action_for"),
                    "gamead_core.audit.model"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gamead_core.audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from gamead_core.audit.context import ActionContext, current, not_an_action
    from gamead_core.audit.log import AuditLog, AuditPage, JobAudit, audit_stream_config, record_action
    from gamead_core.audit.model import AuditAction, AuditFilter, AuditRecord, RefusalThrottle, action_for

__all__ = sorted(_WHERE)
