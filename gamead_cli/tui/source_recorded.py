"""A fixed recording as the dashboard's :class:`~gamead_cli.tui.source.DataSource`: ``{"stats", "workers",
"dlq", …}`` (tests, demos, ``gamead top --once -o json``'s output), so a screen can be pinned by a snapshot test.
Replay and purge remove the entries from the recording, as the real API would."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gamead_cli.inputs import strict_loads
from gamead_cli.tui.source import (
    AUDIT_PAGE,
    DLQ_PAGE,
    OLDEST_PAGE,
    Progress,
    oldest_from_records,
)
from gamead_cli.tui.view_tables import dlq_id
from gamead_core.errors import NotFound


class RecordedSource:
    """A fixed recording: ``{"stats": …, "workers": …, "dlq": …}`` (the JSON of ``gamead top --once -o json``
    also works). Replay and purge remove the entries from the recording, as the real API would."""

    def __init__(self, recording: Mapping[str, Any], api_url: str = "http://recorded") -> None:
        self.data = copy.deepcopy(dict(recording))
        self.api_url = api_url
        self.calls: list[tuple[str, Any]] = []

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> RecordedSource:
        return cls(strict_loads(Path(path).read_text(encoding="utf-8")), **kw)

    def stats(self, history: int) -> dict[str, Any]:
        stats = copy.deepcopy(self.data.get("stats") or {})
        hist = stats.get("history")
        if isinstance(hist, dict) and history >= 0:
            for key, value in list(hist.items()):
                if isinstance(value, list):
                    hist[key] = value[-history:] if history else []
                elif isinstance(value, dict):
                    hist[key] = {k: v[-history:] if history else [] for k, v in value.items()}
        return stats

    def workers(self) -> dict[str, Any]:
        workers = self.data.get("workers") or []
        items = workers.get("items", []) if isinstance(workers, dict) else list(workers)
        return {"items": copy.deepcopy(items), "count": len(items)}

    def dlq(self, limit: int = DLQ_PAGE) -> dict[str, Any]:
        dlq = self.data.get("dlq")
        if dlq is None:
            raise NotFound("GET /v1/dlq: not found (HTTP 404)")
        items = list(dlq.get("items") or [])  # the page's other fields as recorded (inDlq, ageSeconds: outage38)
        return {**copy.deepcopy({k: v for k, v in dlq.items() if k != "items"}), "items": copy.deepcopy(items[:limit]),
                "count": min(limit, len(items)), "total": dlq.get("total", len(items)), "nextCursor": None}

    def audit(self, limit: int = AUDIT_PAGE) -> dict[str, Any]:
        audit = self.data.get("audit")
        if audit is None:
            raise NotFound("GET /v1/audit: not found (HTTP 404)")
        items = copy.deepcopy(list(audit.get("items") or [])[:limit])
        return {"items": items, "count": len(items), "nextCursor": None, "scanned": len(items), "complete": True}

    def whoami(self) -> dict[str, Any]:
        return copy.deepcopy(self.data.get("whoami") or {"name": "anonymous", "role": None, "mayAct": True})

    def dlq_entry(self, entry_id: str) -> dict[str, Any]:
        for item in (self.data.get("dlq") or {}).get("items") or []:
            if dlq_id(item) == entry_id:
                return copy.deepcopy(item)
        raise NotFound(f"no DLQ entry {entry_id}")

    def _remove(self, ids: list[str]) -> int:
        dlq = self.data.get("dlq") or {}
        before = list(dlq.get("items") or [])
        kept = [i for i in before if dlq_id(i) not in set(ids)]
        dlq["items"] = kept
        gone = len(before) - len(kept)
        dlq["total"] = max(0, int(dlq.get("total", len(before))) - gone)
        if isinstance(dlq.get("inDlq"), int):
            dlq["inDlq"] = max(0, dlq["inDlq"] - gone)
        stats_dlq = (self.data.get("stats") or {}).get("dlq")
        if isinstance(stats_dlq, dict) and isinstance(stats_dlq.get("size"), int):
            stats_dlq["size"] = max(0, stats_dlq["size"] - gone)
        return gone

    def oldest(self, level: int, limit: int = OLDEST_PAGE) -> dict[str, Any]:
        from gamead_cli.tui.view_figures import epoch

        now = epoch((self.data.get("stats") or {}).get("generatedAt")) or time.time()
        records = [a for a in self.data.get("ads") or [] if a.get("status") in ("queued", "processing")]
        return oldest_from_records(level, copy.deepcopy(records), now, limit)

    def ad(self, ad_id: str) -> dict[str, Any]:
        for item in self.data.get("ads") or []:
            if item.get("id") == ad_id:
                return copy.deepcopy(item)
        raise NotFound(f"no ad {ad_id}")

    def doctor(self) -> dict[str, Any]:
        self.calls.append(("doctor", None))
        return copy.deepcopy(self.data.get("doctor") or {"ok": True, "problems": 0, "findings": []})

    def scale(self, replicas: int, seconds: int) -> dict[str, Any]:
        self.calls.append(("scale", (replicas, seconds)))
        return {"effectiveReplicas": replicas, "note": None}

    def _matching(self, ids: list[str] | None, flt: dict[str, Any] | None) -> list[str]:
        items = (self.data.get("dlq") or {}).get("items") or []
        if flt is None:
            return list(ids or [])
        return [dlq_id(i) for i in items if i.get("errorClass") == flt.get("errorClass")]

    def count(self, flt: dict[str, Any]) -> int:
        return len(self._matching(None, flt))

    def replay(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        self.calls.append(("replay", list(ids) if flt is None else flt))
        done = self._remove(self._matching(ids, flt))
        return {"matched": done, "replayed": done, "skipped": 0, "failed": 0, "stopped": False, "dryRun": False}

    def purge(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
        self.calls.append(("purge", list(ids) if flt is None else flt))
        done = self._remove(self._matching(ids, flt))
        return {"matched": done, "purged": done}

    def job(self, job_id: str) -> dict[str, Any]:
        """A recorded replay or purge ran no job: nothing (the dashboard follows no job of a recording)."""
        return {}

    def close(self) -> None:
        pass
