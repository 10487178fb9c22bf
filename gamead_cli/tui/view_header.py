"""The dashboard's one-line texts: the header (API, nodes, workers, NATS; read-only, replay, paused, the last
``:doctor``), the autoscaler line and a running job's line. Pure: no I/O, no Textual."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text

from gamead_cli.cell_text import fit_fields
from gamead_cli.doctor_verdict import holds, warnings
from gamead_cli.formats import age, ago, byte_size, clip, short_time
from gamead_cli.tui.view_details import wire_words
from gamead_cli.tui.view_figures import epoch, num
from gamead_cli.tui.view_tables import NOTED_STATES, STATE_STYLES
from gamead_core.scaling.stacks import holder_words

#: a header line narrower than this many cells is compact (:func:`summary_text`: no API address, no NATS server)
HEADER_COMPACT_BELOW = 100


def summary_text(stats: Mapping[str, Any] | None, api_url: str, *, paused: bool = False,
                 compact: bool = False, readonly: bool = False, doctor: Text | None = None,
                 replaying: str | None = None, width: int | None = None,
                 nodes: Sequence[Mapping[str, Any]] | None = None) -> Text:
    """The header line: API, nodes, workers, NATS (server, version, storage used; ``compact`` for terminals under
    :data:`HEADER_COMPACT_BELOW` columns); ``READ-ONLY`` when the dashboard offers no actions (``gamead top
    --readonly``), ``REPLAY <file>`` when it plays a recording, ``doctor``'s last verdict (:func:`doctor_text`) once
    run, and the API's storage state and Redis link while not ok (:func:`storage_text`, :func:`redis_text`). In
    ``width`` cells (None: whole) by dropping whole fields (:func:`~gamead_cli.cell_text.fit_fields`), in this order:
    the API's address, the storage used with its age, the busy slots, the answer's time, the NATS server's version
    (regress41 F7). ``nodes``: the ``/v1/workers`` items the nodes table shows; when given, the node counts are theirs
    (:func:`node_tally`), so the header and the table never disagree (tui42 F2: two answers 2-3 s apart on a loaded box
    read ``5 late`` above a table of ``2 late · 3 stuck``, ``1 gone`` above a table with no gone row)."""
    nodes_given = nodes
    fields: list[tuple[Text, int]] = []

    def add(text: str | Text, style: str = "", rank: int = 0) -> None:
        fields.append((text if isinstance(text, Text) else Text(text, style=style), rank))

    add("gamead ", "bold")
    if readonly:  # first: a narrow terminal cuts the end of this line
        add("READ-ONLY ", "bold magenta")
    if replaying:
        add(f"REPLAY {replaying} ", "bold cyan")
    if paused:
        add("PAUSED ", "bold yellow")
    if doctor is not None:  # before the API's address: the verdict matters more and the line gets cut
        add(doctor + Text("  "))
    if (storage := storage_text(stats)) is not None:  # every submit is refused meanwhile: as early (attack29b F1)
        add(storage + Text("  "))
    if (redis := redis_text(stats)) is not None:  # shared limits and the cache do not hold meanwhile (tui42 F3)
        add(redis + Text("  "))
    if not compact and not (replaying and replaying in api_url):  # `top --replay F --once`: F said once, not twice
        add(api_url + "  ", "dim", rank=5)
    if stats is None:
        add("waiting for the first answer…", "dim")
    else:
        nodes = stats.get("nodes") or {}
        if nodes and nodes_given is not None:
            nodes = {**nodes, **node_tally(nodes_given)}
        nats = stats.get("nats") or {}
        if registry_unread(stats):  # its counts would say no node beat
            add("registry not read yet", "bold red")
        else:
            n_workers = nodes.get("workers", 0)
            add(Text.assemble((f"{nodes.get('api', 0)} api", "bold"), (" · ", "dim"),
                              (f"{n_workers} worker{'' if n_workers == 1 else 's'}", "bold")))
            add(f" ({nodes.get('inFlight', 0)}/{nodes.get('concurrency', 0)} slots busy)", "dim", rank=3)
        for word in NOTED_STATES:
            count = _count(nodes, word) + _count(nodes, f"api{word.title()}")  # workers' and API nodes'
            if count:  # late: heartbeat overdue; gone: its entry expired (not counted above), as the footer
                add(f" {count} {word}", STATE_STYLES[word])
        add("  NATS", "dim")
        if nats.get("connected"):
            name = "" if compact else f"{nats.get('server') or '?'} "
            add(Text(" ", style="dim") + Text(f"{name}v{nats.get('version') or '?'}", style="green"), rank=1)
            storage = nats.get("storage") or {}
            if storage:
                used = (storage.get("fileBytes") or 0) + (storage.get("memoryBytes") or 0)
                add(f" · {byte_size(used)} stored{_storage_age(stats, storage)}", "dim", rank=4)
        else:
            add(Text(" ", style="dim") + Text(f"down: {nats.get('error') or 'unknown'}", style="bold red"))
        add(f"  at {short_time(stats.get('generatedAt'))} UTC", "dim", rank=2)
    return fit_fields(fields, width)


def node_tally(nodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The counts of ``/v1/workers`` items as ``/v1/stats`` ``nodes`` names them: ``api`` / ``workers`` (live: not
    gone), ``late`` / ``stuck`` / ``gone`` / ``quiet`` (of every role: the header adds the API's to the workers'),
    ``inFlight`` / ``concurrency`` (slots of the live workers), ``apiLate`` / ``apiStuck`` / ``apiGone`` 0 (counted
    above). The one count of the nodes panel's title and the header. Pure."""
    live = [n for n in nodes if isinstance(n, Mapping) and n.get("state") != "gone"]
    workers = [n for n in live if n.get("role") == "worker"]

    def total(key: str) -> int:
        return sum(v for n in workers if isinstance(v := n.get(key), int) and not isinstance(v, bool))

    tally = {"api": sum(1 for n in live if n.get("role") == "api"), "workers": len(workers),
             **{w: sum(1 for n in nodes if isinstance(n, Mapping) and n.get("state") == w)
                for w in NOTED_STATES},
             "apiLate": 0, "apiStuck": 0, "apiGone": 0, "inFlight": total("inFlight"),
             "concurrency": total("concurrency")}
    return tally


def storage_text(stats: Mapping[str, Any] | None) -> Text | None:
    """``storage failing 4m12s: NATS did not answer in time`` (red) / ``storage degraded: …`` (yellow) /
    ``storage unknown`` from ``/v1/stats`` ``storage`` (the API node's storage probe:
    :meth:`gamead_core.queue.storage.StorageProbe.status`); None while it is ``ok`` or not said (an older API, NATS
    not reached yet). ``failingForSeconds`` is the failure's age (an older API: ``forSeconds`` of a failing probe).
    Pure."""
    storage = (stats or {}).get("storage")
    if not isinstance(storage, Mapping) or storage.get("state") in (None, "ok"):
        return None
    state = str(storage["state"])
    text = Text(f"storage {state}", style="bold red" if state == "failing" else "yellow")
    if state == "failing":
        seconds = storage.get("failingForSeconds")
        if seconds is None and storage.get("probe") == "failing":
            seconds = storage.get("forSeconds")
        if isinstance(seconds, (int, float)):
            text.append(f" {age(seconds)}", style="bold red")
        why = storage.get("detail") if storage.get("probe") == "failing" else storage.get("lastFailedWrite")
    else:
        why = storage.get("writeCheckRefused") if state == "degraded" else storage.get("detail")
    if why:
        text.append(f": {clip(str(why), 60)}", style="red" if state == "failing" else "yellow")
    return text


def redis_text(stats: Mapping[str, Any] | None) -> Text | None:
    """``redis degraded: cannot connect: connection refused (circuit open)`` (yellow) from ``/v1/stats``
    ``redis.status`` (the answering API node's Redis link, what its ``/readyz`` ``checks.redis`` says); None while it
    is ``ok``, ``disabled`` (no ``redis.url``) or not said (an older API). The ads flow without Redis, but rate limits
    are counted per node and the cache is bypassed meanwhile (README "Redis (optional)"). Before tui42 F3 nothing on
    the dashboard said so: with Valkey killed, ``/readyz`` said ``degraded`` and ``top`` showed no change. Pure."""
    redis = (stats or {}).get("redis")
    status = redis.get("status") if isinstance(redis, Mapping) else None
    if not isinstance(status, str) or status in ("ok", "disabled"):
        return None
    return Text(f"redis {clip(status, 60)}", style="yellow")


def _count(nodes: Mapping[str, Any], key: str) -> int:
    """``nodes[key]`` when a count (0 when absent: an older API, or not a number). Pure."""
    value = nodes.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _storage_age(stats: Mapping[str, Any], storage: Mapping[str, Any]) -> str:
    """`` (read 4.0s ago)`` when the storage figure (``nats.storage.sampledAt``: read every ``ACCOUNT_EVERY``
    samples) is older than the answer (``generatedAt``) by a second or more, else "" (an API without ``sampledAt``
    too). regress44 F6: ``1.7 MiB stored 4.1s ago`` read as stored 4.1 s ago; it is when the figure was read."""
    at, now = epoch(storage.get("sampledAt")), epoch(stats.get("generatedAt"))
    return "" if at is None or now is None or now - at < 1 else f" (read {ago(now - at)})"


def registry_unread(stats: Mapping[str, Any] | None) -> str | None:
    """Why the API has not read the registry yet (``nodes.readAt`` null: its node counts and empty list say
    nothing of the nodes), or None when it has (or the API does not say: an older API). Pure."""
    nodes = (stats or {}).get("nodes") or {}
    if not isinstance(nodes, Mapping) or "readAt" not in nodes or nodes["readAt"] is not None:
        return None
    return str(nodes.get("error") or "registry not read yet")


def autoscaler_text(stats: Mapping[str, Any] | None) -> Text:
    """``autoscaler 2 → 4 workers  <reason>`` (with leader, override, staleness and error when present); the
    decision's reason whole, as ``gamead scale status`` gives it (attack29a F7: clipped at 90 characters, a piped
    ``top --once`` cut it mid-word, so a grep for its end found nothing)."""
    auto = (stats or {}).get("autoscaler")
    text = Text("autoscaler ", style="bold")
    if not isinstance(auto, Mapping):
        text.append("not running", style="dim")
        return text
    current = auto.get("current", auto.get("currentReplicas"))
    desired = auto.get("desired", auto.get("desiredReplicas"))
    reason = auto.get("reason", auto.get("lastReason"))
    if current is None and desired is None:  # a tick that could not read the count left both unknown: not "no
        # decision yet" while the leader records failures (attack30b F6), its reason says what failed
        text.append("worker count unknown" if reason or auto.get("error") else "no decision yet", style="dim")
    else:
        text.append(f"{num(current)} → {num(desired)} workers",  # as `scale status` (newcomer56: "replicas")
                    style="bold" if current == desired else "bold yellow")
    if isinstance(auto.get("override"), Mapping):
        text.append("  override", style="bold magenta")
    if auto.get("error"):
        text.append(f"  error: {clip(auto['error'], 60)}", style="bold red")
    elif reason:
        text.append(f"  {reason}", style="dim")
    if auto.get("stale"):
        text.append("  (stale)", style="yellow")
    leader = auto.get("leader")
    if isinstance(leader, Mapping) and leader.get("id"):  # whose it is, as `scale status` says (newcomer56b)
        text.append(f"  leader {holder_words(str(leader['id']), None)}", style="dim")
    return text


def doctor_text(verdict: Mapping[str, Any] | None, error: str | None = None) -> Text:
    """``doctor ok 12:34:56`` / ``doctor ok · 1 warning 12:34:56`` / ``doctor 3 problems 12:34:56`` / ``doctor
    not run (:doctor)`` for the header (:func:`~gamead_cli.doctor_verdict.holds`: gamead doctor's exit-code rule)."""
    text = Text("doctor ", style="dim")
    if error:
        text.append(f"failed: {clip(error, 40)}", style="yellow")
    elif verdict is None:
        text.append("not run (:doctor)", style="dim")
    else:
        problems = verdict.get("problems") or 0
        if holds(verdict):  # gamead doctor's exit 0: warnings alone are not problems
            text.append("ok", style="green")
            if n := warnings(verdict):
                text.append(f" · {n} warning{'' if n == 1 else 's'}", style="yellow")
        else:
            text.append(f"{problems} problem{'' if problems == 1 else 's'}" if problems else "incomplete",
                        style="bold red" if problems else "yellow")
        text.append(f" at {short_time(verdict.get('checkedAt'))}", style="dim")
    return text


def job_text(job: Mapping[str, Any] | None, width: int | None = None) -> Text:
    """One line of a running job: ``replay job 01J…: running (acting) · matched 40 · replayed 12 · skipped 0``,
    in ``width`` cells (None: whole) by dropping whole fields (:func:`~gamead_cli.cell_text.fit_fields`): the
    job's id first (the audit panel and ``gamead dlq jobs`` have it), then its phase, then the counts from the
    first, so the outcome (``dead again 5``) stays longest (regress41 F7)."""
    if not job:
        return Text("")
    state = str(job.get("state") or "?")
    fields: list[tuple[Text, int]] = [
        (Text(f"{job.get('kind') or 'job'} job", style="bold"), 0),
        (Text(" ") + Text(str(job.get("id") or "?"), style="dim"), 3),
        (Text(f": {state}", style="green" if state == "succeeded" else "red" if state == "failed" else "cyan"), 0),
    ]
    if job.get("phase"):
        fields.append((Text(f" ({job['phase']})", style="dim"), 2))
    for key, value in (job.get("counts") or {}).items():
        fields.append((Text(f" · {wire_words(str(key))} {num(value)}"), 1))  # dead again, as dlq jobs says
    return fit_fields(fields, width)
