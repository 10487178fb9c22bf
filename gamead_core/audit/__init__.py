"""The audit trail: every operator action, who did it, what it chose, how many ads, how it went.

``model`` (the record and the pure rules: actions, filters, the refusal throttle), ``context`` (who is acting in
the request being served), ``log`` (stream ``GAMEAD_AUDIT``: write fail-closed, read newest first; the job
framework's hook). The API records refusals in ``gamead_core.api.audit_gate`` and serves ``GET /v1/audit``
from ``gamead_core.api.routes_audit``.
"""

from gamead_core.audit.context import ActionContext, current, not_an_action
from gamead_core.audit.log import AuditLog, AuditPage, JobAudit, audit_stream_config, record_action
from gamead_core.audit.model import AuditAction, AuditFilter, AuditRecord, RefusalThrottle, action_for

__all__ = [
    "ActionContext",
    "AuditAction",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "AuditRecord",
    "JobAudit",
    "RefusalThrottle",
    "action_for",
    "audit_stream_config",
    "current",
    "not_an_action",
    "record_action",
]
