"""What a doctor report (``GET /v1/doctor``'s body) means for the people reading it: does it hold, and with how
many warnings. One rule for ``gamead doctor``'s exit code and for ``gamead top``'s header and notice, so the
dashboard never calls "problems" what the command exits 0 for (review28 R3). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def holds(report: Mapping[str, Any]) -> bool:
    """Does ``report`` exit 0? When every invariant holds and everything was read (``ok``), or when its only
    findings are warnings (``severity: "warning"``, ``redis_unwritable``: the ads still flow, so a script that
    reads exit 1 as "invariants broken" is not paged for a full cache; review28 R3). ``registry_unwritable`` (no
    worker takes work while it lasts) and ``store_unwritable`` (every submit is refused) are errors: exit 1."""
    if report.get("ok"):
        return True
    findings = report.get("findings") or []
    return bool(report.get("complete")) and not report.get("topologyChanged") and all(
        f.get("severity") == "warning" for f in findings)


def warnings(report: Mapping[str, Any]) -> int:
    """How many of ``report``'s findings are warnings."""
    return sum(1 for f in report.get("findings") or [] if f.get("severity") == "warning")
