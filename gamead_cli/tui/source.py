"""Where the dashboard's data comes from: the gamead API over HTTP, or a recorded payload (tests, demos).

The dashboard only ever calls a :class:`DataSource`; :class:`ApiSource` is the real one (over
:class:`gamead_cli.client.ApiClient`, so errors arrive as gamead errors), :class:`RecordedSource` replays a
fixed ``{"stats", "workers", "dlq"}`` document so a screen can be pinned by a snapshot test (it is in
``source_recorded``). One refresh is :func:`fetch_snapshot`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import closing
from typing import Any, Protocol
from urllib.parse import quote

from gamead_cli import service_clock
from gamead_cli.client import ApiClient
from gamead_cli.tui.view import Snapshot
from gamead_core.errors import ApiClientError, NotFound
from gamead_core.redact import redact_url
from gamead_core.safe_text import shown_tree

DLQ_PAGE = 30  #: entries the dashboard reads: more than fit on screen, few enough to poll
AUDIT_PAGE = 8  #: audit records the dashboard reads (the panel shows the newest that fit)
LEVEL_PAGE = 200  #: ads of one status read for a level's drill-down on an API without ``/v1/levels``
OLDEST_PAGE = 50  #: ads a level's drill-down lists (``GET /v1/levels/{level}/oldest``)

#: the oldest DLQ page or audit panel (seconds) the dashboard takes from the API's cache of recent answers: both are
#: re-read only every few refreshes (app_refresh.DLQ_EVERY: 5, so every ≥ 1 s at the fastest --refresh, 0.2 s),
#: so an answer this old is no staler than that cadence; the API says each answer's ``ageSeconds``
WATCH_MAX_AGE = 1
WATCHING = {"Cache-Control": f"max-age={WATCH_MAX_AGE}"}

Progress = Callable[[dict[str, Any]], None]


class DataSource(Protocol):
    """The dashboard's only view of the world. Every call may raise a :class:`GameadError`."""

    api_url: str

    def stats(self, history: int) -> dict[str, Any]: ...

    def workers(self) -> dict[str, Any]: ...

    def dlq(self, limit: int = DLQ_PAGE) -> dict[str, Any]: ...

    def dlq_entry(self, entry_id: str) -> dict[str, Any]: ...

    def audit(self, limit: int = AUDIT_PAGE) -> dict[str, Any]: ...

    def whoami(self) -> dict[str, Any]: ...

    def oldest(self, level: int, limit: int = OLDEST_PAGE) -> dict[str, Any]: ...

    def ad(self, ad_id: str) -> dict[str, Any]: ...

    def doctor(self) -> dict[str, Any]: ...

    def scale(self, replicas: int, seconds: int) -> dict[str, Any]: ...

    def count(self, flt: dict[str, Any]) -> int: ...

    def replay(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
               progress: Progress | None = None) -> dict[str, Any]: ...

    def purge(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
              progress: Progress | None = None) -> dict[str, Any]: ...

    def job(self, job_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ShownSource:
    """Any :class:`DataSource` (the API, a recording, a replay) whose answers are shown: every text in them
    with the characters that do not show as themselves escaped (:func:`gamead_core.safe_text.shown_tree`), so
    no table, detail or title of the dashboard prints a stored control character (a title's ``\x9b31m``
    shows as ``\u009b31m``). Methods and attributes are the source's; only answers that are dicts or lists
    are changed. Ids are ASCII and come back as they were."""

    def __init__(self, source: DataSource) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._source, name)
        if not callable(found):
            return found

        def shown_answer(*args: Any, **kw: Any) -> Any:
            answer = found(*args, **kw)
            return shown_tree(answer) if isinstance(answer, (dict, list)) else answer

        return shown_answer


class ApiSource:
    """The gamead API (``/v1/stats``, ``/v1/workers``, ``/v1/dlq…``) through :class:`ApiClient`."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.api_url = redact_url(client.api_url) or ""  # shown on screen: never a password

    def stats(self, history: int) -> dict[str, Any]:
        return self._dict(self.client.request("GET", "/v1/stats", params={"history": history}))

    def workers(self) -> dict[str, Any]:
        return self._dict(self.client.request("GET", "/v1/workers"))

    def dlq(self, limit: int = DLQ_PAGE) -> dict[str, Any]:
        """The newest page, as a watcher: an answer up to :data:`WATCH_MAX_AGE` old will do (the API shares one
        read among dashboards and keeps them out of operators' ``dlq.scans``; attack37 F1)."""
        return self._dict(self.client.request("GET", "/v1/dlq", params={"limit": limit, "newest": "true"},
                                              headers=WATCHING))

    def dlq_entry(self, entry_id: str) -> dict[str, Any]:
        return self._dict(self.client.request("GET", f"/v1/dlq/{quote(entry_id, safe='')}"))

    def audit(self, limit: int = AUDIT_PAGE) -> dict[str, Any]:
        return self._dict(self.client.request("GET", "/v1/audit", params={"limit": limit}, headers=WATCHING))

    def whoami(self) -> dict[str, Any]:
        """``GET /v1/whoami``: the token's name, role and whether it may act (``mayAct``)."""
        return self._dict(self.client.request("GET", "/v1/whoami"))

    def oldest(self, level: int, limit: int = OLDEST_PAGE) -> dict[str, Any]:
        """``GET /v1/levels/{level}/oldest``: the level's oldest unacknowledged ads, oldest first. An API without
        the route: its newest queued and processing records (``GET /ads``), oldest first, ``partial: true``."""
        try:
            return self._dict(self.client.request("GET", f"/v1/levels/{int(level)}/oldest",
                                                  params={"limit": limit}))
        except NotFound:
            pass
        lists = [self._dict(self.client.request("GET", "/ads", params={"status": st, "priority": int(level),
                                                                       "limit": LEVEL_PAGE})).get("items") or []
                 for st in ("queued", "processing")]
        return oldest_from_records(level, [*lists[0], *lists[1]], service_clock.now(), limit)  # ages: its clock

    def ad(self, ad_id: str) -> dict[str, Any]:
        """``GET /ads/{id}``: the ad's record, its analysis when done."""
        return self._dict(self.client.request("GET", f"/ads/{quote(ad_id, safe='')}"))

    def doctor(self) -> dict[str, Any]:
        """``GET /v1/doctor``: ``{ok, problems, findings, checkedAt …}`` (one full check: call it on demand)."""
        return self._dict(self.client.request("GET", "/v1/doctor"))

    def scale(self, replicas: int, seconds: int) -> dict[str, Any]:
        """``POST /v1/scale/override``: hold ``replicas`` workers for ``seconds``."""
        return self._dict(self.client.request("POST", "/v1/scale/override",
                                              json={"replicas": replicas, "forSeconds": seconds}))

    def count(self, flt: dict[str, Any]) -> int:
        """How many DLQ entries ``flt`` matches now (a replay dry run: changes nothing)."""
        body = self._dict(self.client.request("POST", "/v1/dlq/replay", json={"filter": flt, "dryRun": True}))
        return int(body.get("matched") or 0)

    def replay(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Start ONE replay job for ``ids`` (or every entry ``flt`` matches) and follow it until every entry was
        handled (not until the replayed ads finish: the job follows those on the server), calling
        ``progress(job)`` at each change. The job's counts, ``failed`` = dead again so far."""
        sel: dict[str, Any] = {"ids": ids} if flt is None else {"filter": flt}
        job = self._dict(self.client.request("POST", "/v1/dlq/replay", json=sel))
        return self._handled(job, progress)

    def purge(self, ids: list[str] | None = None, *, flt: dict[str, Any] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
        """Start ONE purge job for ``ids`` (or ``flt``) and follow it; its counts (``purged``, ``skipped`` …)."""
        sel: dict[str, Any] = {"ids": ids} if flt is None else {"filter": flt}
        job = self._dict(self.client.request("POST", "/v1/dlq/purge", json={**sel, "confirm": True}))
        return self._handled(job, progress)

    def job(self, job_id: str) -> dict[str, Any]:
        """One job's document now (``GET /v1/jobs/{id}``): its state, phase and counts."""
        return self._dict(self.client.request("GET", f"/v1/jobs/{quote(job_id, safe='')}"))

    def _handled(self, job: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
        """Follow a job's progress stream until it is past acting on its entries (or ended)."""
        if progress is not None:
            progress(job)
        with closing(self.client.stream_ndjson("GET", f"/v1/jobs/{quote(str(job['id']), safe='')}")) as lines:
            for line in lines:
                job = self._dict(line)
                if progress is not None:
                    progress(job)
                if job.get("phase") in ("following", "done") or job.get("state") not in ("queued", "running"):
                    break
        counts = dict(job.get("counts") or {})
        return {**counts, "failed": counts.get("deadAgain", 0), "jobId": job.get("id"), "state": job.get("state")}

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _dict(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiClientError(f"the API answered with unexpected data: {type(body).__name__}")
        return body


def oldest_from_records(level: int, records: list[Mapping[str, Any]], now: float,
                        limit: int = OLDEST_PAGE) -> dict[str, Any]:
    """The answer of ``GET /v1/levels/{level}/oldest`` made from ad records (``GET /ads`` items) of ``level``:
    oldest submitted first, ages at ``now`` (epoch seconds), ``partial: true`` (a scan of the newest records,
    not the work stream)."""
    from gamead_cli.tui.view_figures import epoch

    mine = [r for r in records if isinstance(r, Mapping) and r.get("priority") == level and r.get("id")]
    mine.sort(key=lambda r: epoch(r.get("submittedAt")) or now)
    items = []
    for r in mine[:limit]:
        submitted = epoch(r.get("submittedAt"))
        items.append({"id": r["id"], "state": "ackPending" if r.get("status") == "processing" else "pending",
                      "queuedAt": r.get("submittedAt"),
                      "ageSeconds": None if submitted is None else max(0.0, now - submitted),
                      "status": r.get("status"), "attempts": r.get("attempts"), "workerId": r.get("workerId"),
                      "title": (r.get("ad") or {}).get("title")})
    waiting = sum(1 for r in mine if r.get("status") != "processing")
    return {"level": level, "pending": waiting, "ackPending": len(mine) - waiting, "count": len(items),
            "items": items, "partial": True}


def fetch_snapshot(
    source: DataSource,
    history: int,
    *,
    want_dlq: bool | Callable[[Mapping[str, Any]], bool] = True,
    previous: Snapshot | None = None,
) -> Snapshot:
    """One refresh: stats and nodes (their errors propagate: without them there is nothing to show), then
    the DLQ page and the last audit records if ``want_dlq`` (or ``want_dlq(stats)``) says so — else the previous
    ones are kept. Their errors stay on the snapshot: an API without those routes still shows everything else."""
    stats = source.stats(history)
    nodes = source.workers().get("items") or []
    fetch = want_dlq(stats) if callable(want_dlq) else want_dlq
    if not fetch and previous is not None:
        return Snapshot(stats=stats, nodes=nodes, dlq=previous.dlq, dlq_error=previous.dlq_error,
                        audit=previous.audit, audit_error=previous.audit_error)
    dlq, error = _optional(source.dlq, "DLQ", "the API has no DLQ endpoint (HTTP 404)")
    audit, audit_error = _optional(source.audit, "audit trail", "the API has no audit trail (HTTP 404)")
    return Snapshot(stats=stats, nodes=nodes, dlq=dlq, dlq_error=error, audit=audit, audit_error=audit_error)


def _optional(read: Callable[[], dict[str, Any]], what: str,
              missing: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(answer, None)``, or ``(None, why)`` when this part cannot be read: an API without the route still shows
    everything else. Raises if the API is unreachable (the whole refresh failed)."""
    try:
        return read(), None
    except NotFound:
        return None, missing
    except ApiClientError as exc:
        if exc.status is None:
            raise
        return None, f"{what} unavailable: {exc.message}"
