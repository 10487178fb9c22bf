"""Submit game ads for analysis: one from a file, stdin or flags, or many generated ones.

[bold]Examples[/bold]

  gamead submit ad.json --wait
  cat ad.json | gamead submit - --priority 1
  gamead submit -t "Sky Saga" -g RPG --wait
  gamead submit -t "Sky Saga" -d "Epic RPG" -g rpg --cta "Play" --duration 30
  gamead submit --count 1000 --rate 200 --wait -o json
  gamead submit ads.ndjson --wait

A JSON file may also hold an array of ads: it is sent as a batch, as an NDJSON file, each ad named by its jq
path (ads.json[0]). With -o json, a batch (NDJSON, an array, --count) lists each of its first 10,000 ads in
input order: items (where, outcome accepted / duplicate / maybeQueued with its id, or rejected with code and
message) and acceptedIds; later ads are counted, not listed (itemsOmitted), so an endless stdin keeps memory
flat. One ad prints its 202 body, with its id.

An ad built from flags needs --title and --genre; the rest has defaults (description from the title and
genre, --cta "Play now", --duration 30, --priority 3). --count and NDJSON files (one ad a line) are sent
with POST /ads/batch, --batch-size ads a request: if the API's api.batch_max is smaller (422
batch_too_large), each refused batch is split to that size and resent (a refused batch queued nothing, so no ad
is sent twice) and the rest go at that size. Each rejected ad is named on stderr (FILE:LINE or "ad N": code:
message, field paths for validation_failed; the first 20 in input order, then "… and N more") and in -o json
(rejections, rejectionsNotListed). An ad whose publish got no answer in time (503 queue_unavailable naming
its id) is not rejected: it may still be analysed, so it is counted apart ("may be queued"; every id in -o json,
maybeQueuedIds) to look up, not resend; so is every ad of a batch that got no answer at all (ids unknown:
maybeQueuedUnknown; with --idempotency-key, their keys in maybeQueuedKeys, and the same command with the same key
settles them). Ctrl-C during --count prints what was sent so far.

Exit codes: 0 ok, 1 rejected, may be queued or timed out, 2 bad usage or a file missing or not JSON, 3 API
unreachable, 6 an ad failed (--wait), 130 interrupted.
"""

from __future__ import annotations

import itertools
import os
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import datetime
from functools import partial
from typing import Annotated, Any, NamedTuple

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from gamead_cli import exitcodes, retry
from gamead_cli.ad_fields import spelled_twice_problem, with_overrides
from gamead_cli.client import ApiClient
from gamead_cli.generate import generate_ads
from gamead_cli.inputs import (
    BadInputFile,
    TooLarge,
    bounded_lines,
    input_name,
    json_line,
    load_json,
    open_input,
)
from gamead_cli.options import (
    ApiOpt, ConfigOpt, OutputFormat, OutputOpt, bounded_float, client_settings_from, reach_again,
)
from gamead_cli.program import follow_up
from gamead_cli.output import (
    accepted_view,
    ad_view,
    emit,
    error_line,
    note_line,
    red_line,
    stderr_console,
    summary_view,
)
from gamead_core.errors import ApiClientError, ApiUnreachable, GameadError, NoAnswer

TERMINAL = frozenset({"completed", "failed", "dead"})


def idempotency_key_arg(value: str | None) -> str | None:
    """``--idempotency-key KEY`` checked by the API's own rule (:func:`gamead_core.ids.idempotency_key_problem`)
    before anything is sent: a key the API would refuse (``a,b``: 400 ``duplicate_header``; ``ключ``: not printable
    ASCII, which httpx cannot even put in a header) is bad usage, exit 2,
    one line naming the flag."""
    from gamead_core.ids import idempotency_key_problem

    if value is not None and (problem := idempotency_key_problem(value)) is not None:
        raise typer.BadParameter(f"{value[:60]!r}: {problem}", param_hint="--idempotency-key")
    return value
FAILED = frozenset({"failed", "dead"})

# --- input -----------------------------------------------------------------------------------------

#: Largest ad file read (bytes). The API takes 64 KiB bodies by default; `submit /dev/zero` must end.
MAX_AD_FILE_BYTES = 1024 * 1024
#: Deepest nesting accepted in an ad file: an ad is an object of strings and lists of strings (depth 2).
MAX_AD_DEPTH = 16
#: Defaults of an ad built from flags (only --title and --genre are needed).
FLAG_DEFAULTS: dict[str, Any] = {"callToAction": "Play now", "duration": 30}


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _read_capped(source: str) -> bytes:
    """At most MAX_AD_FILE_BYTES + 1 bytes of ``source`` (``-`` = stdin). Missing or unreadable: bad usage (exit
    2, :func:`gamead_cli.inputs.open_input`)."""
    fh = open_input(source)
    try:
        data: bytes | str = fh.read(MAX_AD_FILE_BYTES + 1)
        return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data  # a text stdin (tests)
    finally:
        if source != "-":
            fh.close()


def load_ad_file(source: str) -> dict[str, Any]:
    """Read one ad (a JSON object) from a file path, or from stdin when ``source`` is ``-``.

    Reads at most :data:`MAX_AD_FILE_BYTES`. A missing or unreadable file, or content that is not one JSON
    object of finite numbers nested at most :data:`MAX_AD_DEPTH` deep, is bad input: exit 2
    (:class:`gamead_cli.inputs.BadInputFile`, the README's exit codes).
    """
    data = load_ad_input(source)
    if not isinstance(data, dict):
        raise BadInputFile(input_name(source), f"must hold one JSON object (the ad), not {type(data).__name__}")
    return data


def ads_of_array(source: str, ads: list[Any], overrides: Mapping[str, Any]) -> list[Labeled]:
    """The ads of a JSON file holding an array, each labelled with its jq path (``ads.json[0]``, 0-based) and
    ``overrides`` applied. Pure. Raises :class:`BadInputFile` (exit 2, nothing sent) for an empty array or an
    element that is not a JSON object: the whole file is read already, so it is refused whole."""
    where = input_name(source)
    if not ads:
        raise BadInputFile(where, "holds an empty array: no ad to submit")
    for n, item in enumerate(ads):
        if not isinstance(item, dict):
            raise BadInputFile(f"{where}[{n}]", f"is {type(item).__name__}, not an ad: the file must hold one "
                               "JSON object (an ad) or an array of them")
        if (twice := spelled_twice_problem(item)) is not None:
            raise BadInputFile(f"{where}[{n}]", twice)
    return [Labeled(f"{where}[{n}]", with_overrides(item, overrides)) for n, item in enumerate(ads)]


def load_ad_input(source: str) -> dict[str, Any] | list[Any]:
    """:func:`load_ad_file`, also taking a JSON array of ads (sent as a batch, like an NDJSON file): the decoded
    object or array. Raises as :func:`load_ad_file` for anything else."""
    where = input_name(source)
    raw = _read_capped(source)
    if len(raw) > MAX_AD_FILE_BYTES:
        raise BadInputFile(where, f"larger than {MAX_AD_FILE_BYTES // 1024} KiB: an ad is a small JSON object "
                           "(many ads: an NDJSON file, one a line)")
    try:
        data = load_json(raw, where)
    except BadInputFile as exc:
        if "nested too deeply" in exc.problem:
            raise BadInputFile(where, f"nested too deeply to be an ad (at most {MAX_AD_DEPTH} levels)") from None
        raise
    if not isinstance(data, (dict, list)):
        raise BadInputFile(where, f"must hold one JSON object (the ad) or an array of them, not "
                           f"{type(data).__name__}")
    if _depth(data) > MAX_AD_DEPTH + isinstance(data, list):
        raise BadInputFile(where, f"nested too deeply to be an ad (at most {MAX_AD_DEPTH} levels)")
    if isinstance(data, dict) and (twice := spelled_twice_problem(data)) is not None:
        raise BadInputFile(where, twice)  # one field under both its names: which counts would be a guess
    return data


#: Longest NDJSON line read (bytes): an ad is far smaller (the API takes 64 KiB bodies by default).
MAX_NDJSON_LINE_BYTES = 64 * 1024
#: file names read as NDJSON (one ad per line) without --ndjson
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def is_ndjson(source: str | None, flag: bool) -> bool:
    return flag or (source is not None and source.endswith(NDJSON_SUFFIXES))


def _open_lines(source: str) -> Any:
    return open_input(source)


#: a line longer than MAX_NDJSON_LINE_BYTES is rejected and skipped to its end, but no further than this: then the
#: rest of the file is not read (named in the summary)
MAX_NDJSON_SKIP_BYTES = 64 * 1024**2
#: an NDJSON file larger than this is not counted first: its progress bar has no total (review14b: a valid line
#: and a 1 TiB sparse hole kept `gamead submit` reading to count before it sent anything)
COUNT_MAX_BYTES = 256 * 1024**2


def count_ndjson(source: str) -> int | None:
    """Lines holding something in an NDJSON file (for the progress bar); None for stdin or a file of more than
    :data:`COUNT_MAX_BYTES` (counting would read it all before the first ad is sent)."""
    if source == "-":
        return None
    with _open_lines(source) as fh:
        try:
            if os.fstat(fh.fileno()).st_size > COUNT_MAX_BYTES:
                return None
        except (OSError, ValueError, AttributeError):  # not a real file (tests): counted
            pass
        return sum(1 for _, line in bounded_lines(fh, MAX_NDJSON_LINE_BYTES) if line is None or line.strip())


class Labeled(NamedTuple):
    """An ad (or the :class:`GameadError` standing for an unreadable one) and where it came from
    (``ads.ndjson:2``), so a rejection can name it."""

    where: str
    ad: Mapping[str, Any] | GameadError


def read_ndjson(source: str, overrides: Mapping[str, Any]) -> Iterator[Labeled]:
    """The ads of an NDJSON file (``-`` = stdin), one JSON object a line, read lazily (memory stays flat
    whatever the file's size: :func:`gamead_cli.inputs.bounded_lines`), with ``overrides`` applied to each, each
    labelled ``FILE:LINE``. Blank lines are skipped. The first line holding something must be strict JSON in
    UTF-8 (:func:`gamead_cli.inputs.json_line`, a UTF-8 BOM dropped), else the file is not NDJSON and is refused
    whole, as an ad file that is not JSON is: :class:`gamead_cli.inputs.BadInputFile` (exit 2) when that line is
    read (:func:`first_read` makes it before anything is sent). After it, a line that is not JSON (``NaN`` and
    ``Infinity`` are not JSON), not UTF-8, or longer than :data:`MAX_NDJSON_LINE_BYTES`, and any line that is
    not one JSON object, comes as a :class:`GameadError` (code ``invalid_json``) in the ad's place: it is
    counted as rejected, named, and the other lines go on (a stream is not held back for one bad ad). An ad giving
    a field under both its names (:func:`gamead_cli.ad_fields.spelled_twice_problem`) is refused the same way:
    the file whole on its first line, else that ad (code ``ambiguous_field``)."""
    where = input_name(source)
    first = True
    with _open_lines(source) as fh:
        lines = bounded_lines(fh, MAX_NDJSON_LINE_BYTES, max_skip=MAX_NDJSON_SKIP_BYTES)
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                return
            except TooLarge as exc:  # a line too long to skip (a sparse hole): the rest is named, not read
                yield Labeled(f"{where}:{number}", _bad_line(str(exc)))
                return
            label = f"{where}:{number}"
            if line is not None and not line.strip():
                continue
            try:
                data = json_line(number, line, where, MAX_NDJSON_LINE_BYTES)
            except BadInputFile as exc:
                if first:  # not JSON Lines at all (a YAML file, pretty-printed JSON…): refused whole
                    raise
                yield Labeled(label, _bad_line(_line_problem(exc.problem)))
                continue
            was_first, first = first, False
            if not isinstance(data, dict) or _depth(data) > MAX_AD_DEPTH:
                yield Labeled(label, _bad_line("not one JSON object (an ad)"))
                continue
            if (twice := spelled_twice_problem(data)) is not None:
                if was_first:  # as a first line naming a key twice: the file is refused whole, nothing sent
                    raise BadInputFile(where, twice, number)
                yield Labeled(label, _Ambiguous(twice))  # as a later one: this ad rejected, the others sent
                continue
            yield Labeled(label, with_overrides(data, overrides))


def _line_problem(problem: str) -> str:
    """What a rejected NDJSON line's summary says (``not valid JSON (…)``; an ad is small, a file is UTF-8)."""
    if problem.startswith("longer than"):
        return f"{problem} (an ad is a small JSON object)"
    return problem.replace("save it as UTF-8", "save the file as UTF-8")


def first_read(items: Iterator[Labeled]) -> Iterator[Labeled]:
    """``items`` with its first item read at once (so :func:`read_ndjson` refuses a file that is not UTF-8
    before any request is sent or a progress bar drawn); the same items, in order."""
    head = next(items, None)
    return items if head is None else itertools.chain([head], items)


class _BadLine(GameadError):
    """A line of an NDJSON input that is not one JSON object (counted as rejected ``invalid_json``)."""

    code = "invalid_json"


class _Ambiguous(GameadError):
    """A line of an NDJSON input giving one field under both its names (counted as rejected
    ``ambiguous_field``, the API's code for it)."""

    code = "ambiguous_field"


def _bad_line(message: str) -> GameadError:
    return _BadLine(message)


def complete_flag_ad(fields: dict[str, Any]) -> dict[str, Any]:
    """An ad built from flags alone, with defaults for what was not given. Needs title and genre.

    Raises ``typer.BadParameter`` (exit 2) naming the missing flags.
    """
    missing = [flag for flag, key in (("--title", "title"), ("--genre", "genre")) if not fields.get(key)]
    if missing:
        raise typer.BadParameter(
            f"an ad built from flags needs {' and '.join(missing)} (the rest has defaults), "
            "or give a JSON file", param_hint=" / ".join(missing))
    ad = {**FLAG_DEFAULTS, **fields}
    ad.setdefault("description", f"{fields['title']}: a {fields['genre']} game.")
    return ad


def ad_from_flags(
    *,
    title: str | None = None,
    description: str | None = None,
    genre: str | None = None,
    audience: list[str] | None = None,
    visual: list[str] | None = None,
    cta: str | None = None,
    duration: int | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The wire fields (camelCase) set by flags; unset flags are left out so they don't override."""
    fields: dict[str, Any] = {
        "title": title,
        "description": description,
        "genre": genre,
        "targetAudience": audience or None,
        "visualElements": visual or None,
        "callToAction": cta,
        "duration": duration,
        "priority": priority,
    }
    return {k: v for k, v in fields.items() if v is not None}


# --- one ad ----------------------------------------------------------------------------------------


def wait_for_ad(client: ApiClient, ad_id: str, timeout: float) -> dict[str, Any]:
    """Poll ``GET /ads/{id}`` until the ad is completed, failed or dead, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    interval = 0.1
    status = "queued"
    with stderr_console().status(f"waiting for ad {ad_id} ({status})…") as spinner:
        while True:
            record = client.get_ad(ad_id)
            status = str(record.get("status"))
            if status in TERMINAL:
                return record
            spinner.update(f"waiting for ad {ad_id} ({status})…")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GameadError(
                    f"ad {ad_id} is still {status} after {timeout:g}s"
                    f" — check later with: {follow_up('ads', 'get', ad_id, again=client.again)}"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 1.0)


def submit_one(
    client: ApiClient,
    ad: Mapping[str, Any],
    *,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    output: OutputFormat,
    quiet: bool = False,
) -> int:
    """Submit one ad, print the 202 answer (or, with ``wait``, the final record); return the exit code.

    ``quiet`` prints the ad's id alone (for ``ID=$(gamead submit … -q)``). Raises :class:`NoAnswer` saying what
    to do when the request went out and no answer came (the ad may be queued: with a key, the client sent it
    again first, :mod:`gamead_cli.retry`).
    """
    try:
        accepted = client.submit(ad, idempotency_key)
    except NoAnswer as exc:
        settle = (f"send the same command again with --idempotency-key {shlex.quote(idempotency_key or '')} (a "
                  "repeat queues nothing and prints its id)" if idempotency_key else
                  f"look for it with `{follow_up('ads', 'list', again=client.again)}` before sending it again (or send "
                  "it with --idempotency-key KEY, which a repeat cannot queue twice)")
        raise NoAnswer(f"{exc.message}; the ad may be queued: {settle}") from exc
    if not wait:
        if quiet:
            print(accepted["id"], flush=True)
        else:
            emit(accepted, output, partial(accepted_view, again=client.again))
        return exitcodes.OK
    if output != OutputFormat.json and not quiet:
        note_line(f"{'duplicate of' if accepted.get('duplicate') else 'accepted'} ad {accepted['id']}")
    record = wait_for_ad(client, str(accepted["id"]), timeout)
    if quiet:
        print(accepted["id"], flush=True)
    else:
        emit(record, output, partial(ad_view, again=client.again))
    return exitcodes.AD_FAILED if record.get("status") in FAILED else exitcodes.OK


# --- many ads --------------------------------------------------------------------------------------


def _progress() -> Progress:
    """A progress bar on stderr; silent when stderr is not a terminal (CI logs, pipes)."""
    console = stderr_console()
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _latency(record: Mapping[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(record["submittedAt"]))
        end = datetime.fromisoformat(str(record["completedAt"]))
    except (KeyError, ValueError, TypeError):
        return None
    return (end - start).total_seconds()


#: bounds of ``--rate`` (ads per second; 0 = as fast as possible): slower than one ad in 1000 s is no rate
MIN_RATE = 0.001
MAX_RATE = 1_000_000.0
#: longest ``--timeout`` of ``--wait`` (seconds)
MAX_WAIT_SECONDS = 7 * 86400
#: Ads per ``POST /ads/batch`` request (the API takes up to ``api.batch_max``, 500 by default).
BATCH_SIZE = 100


Item = tuple[int, Any]  #: (index, an ad or the GameadError that stands for an unreadable one)
#: rejected ads named one by one (``FILE:LINE: code: message``) on stderr and in ``-o json``; the rest counted
REJECTIONS_LISTED = 20
#: API answers that refuse a batch for its size alone: nothing of it was queued, so it is split and resent
SIZE_REFUSALS = frozenset({"batch_too_large", "payload_too_large"})
#: per-ad detail of ``-o json`` (``items``, ``acceptedIds``, ``maybeQueuedIds``, ``maybeQueuedKeys``) is kept for
#: the first ITEMS_KEPT ads in input order; later ads are counted only (``itemsOmitted``): an endless stdin
#: (``tail -f ads.ndjson | gamead submit --ndjson -``) must not grow the client's memory (attack27 F6: ~20 MB/s)
ITEMS_KEPT = 10_000
#: ``--wait`` follows the ads accepted among the first FOLLOWED_MAX ads in input order (an id kept for each, ~150
#: bytes); those accepted later are counted in ``notFollowed``
FOLLOWED_MAX = 100_000


def keep_first(kept: dict[int, Any], index: int, value: Any, most: int) -> None:
    """Put ``value`` under ``index`` in ``kept`` if ``index`` is among the ``most`` smallest seen: ``kept`` holds the
    first ``most`` by index (input order) whatever order they come in (batches answer in any order). Mutates
    ``kept``; O(``most``) per call."""
    if len(kept) < most:
        kept[index] = value
    elif index < (last := max(kept)):
        del kept[last]
        kept[index] = value


def rejection_text(error: Mapping[str, Any]) -> str:
    """An API error object (``{"code", "message", "details"}``) → ``message`` or, for a 422 with field paths,
    ``title: String should have at least 1 character; duration: …``. Pure."""
    details = error.get("details")
    fields = [f"{d.get('loc')}: {d.get('msg')}" for d in details if isinstance(d, dict) and d.get("loc")] \
        if isinstance(details, list) else []
    return "; ".join(fields[:5]) if fields else str(error.get("message") or "")


def maybe_queued_id(error: Any) -> str | None:
    """The ad id of a per-ad ``queue_unavailable`` error that names one (``details.adId``: the API's answer to
    an ad whose publish got no answer in time, which may still be queued and analysed), else None. Pure."""
    if not isinstance(error, dict) or error.get("code") != "queue_unavailable":
        return None
    details = error.get("details")
    ad_id = details.get("adId") if isinstance(details, dict) else None
    return ad_id if isinstance(ad_id, str) else None


def rejections_lines(summary: Mapping[str, Any]) -> list[str]:
    """``FILE:LINE: code: message`` for each listed rejection, then ``… and N more rejected``. Pure."""
    lines = [f"{r['where']}: {r['code']}: {r['message']}" for r in summary.get("rejections") or []]
    if summary.get("rejectionsNotListed"):
        lines.append(f"… and {summary['rejectionsNotListed']} more rejected")
    return lines


def _pace(stop: threading.Event, at: float) -> bool:
    """Wait until monotonic time ``at`` (in bounded steps: ``Event.wait`` overflows past ``TIMEOUT_MAX``);
    True if ``stop`` was set meanwhile."""
    while (delay := at - time.monotonic()) > 0:
        if stop.wait(min(delay, 60.0)):
            return True
    return stop.is_set()


def _counted(future: Future[None]) -> bool:
    """True if ``future`` is done and what it raised, if anything, is an ``Exception`` (counted as ``not_sent`` in
    ``send_many``): it need not be read again at the end."""
    return future.done() and not future.cancelled() and isinstance(future.exception() or Exception(), Exception)


def _chunks(ads: Iterable[Item], size: Callable[[], int]) -> Iterator[list[Item]]:
    """Runs of ``size()`` items (asked again for each run: a batch size learnt from the API applies at once)."""
    chunk: list[Item] = []
    for item in ads:
        chunk.append(item)
        if len(chunk) >= size():
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def send_many(
    client: ApiClient,
    ads: Iterable[Mapping[str, Any] | GameadError | Labeled],
    *,
    total: int | None,
    rate: float,
    concurrency: int,
    idempotency_key: str | None,
    batch_size: int = BATCH_SIZE,
    keep_items: bool = False,
    follow: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """Submit ``ads`` with ``POST /ads/batch``, ``batch_size`` ads a request, at ``rate`` ads per second (0 = as
    fast as possible), ``concurrency`` requests in flight.

    An ad that is not a JSON object (say a bad NDJSON line: pass a :class:`GameadError` in its place) is counted
    as rejected under that error's code. Each rejected ad is named (``FILE:LINE`` for a :class:`Labeled` one,
    else ``ad N``, 1-based) with its code and message: the first :data:`REJECTIONS_LISTED` in input order (not
    in the order their batches were answered) in the summary's ``rejections``, the others counted in
    ``rejectionsNotListed``. A batch the API refuses for its size alone
    (422 ``batch_too_large``: ``details.max``; 413 ``payload_too_large``) queued nothing: it is split (to the
    API's max, else in halves) and the parts resent, and later batches use the smaller size — no ad is sent twice.
    A chunk whose sending raised anything else (a bug, an ad the HTTP client cannot encode) is counted as
    rejected ``not_sent``, each ad named with the exception: every future of the pool is read, none vanishes.
    With ``keep_items`` (``-o json``) the summary also has ``items``: one per ad sent, in input order, ``{"where",
    "outcome", "id"}`` (outcome ``accepted``, ``duplicate`` — the first ad's id — or ``maybeQueued``) or ``{"where",
    "outcome": "rejected", "code", "message"}``, and ``acceptedIds``, the ids of the ads newly queued, in input
    order (a script learns which ad became which id; ~150 bytes an ad held until the end, so only when asked).
    Per-ad detail (``items``, ``acceptedIds``, ``maybeQueuedIds``, ``maybeQueuedKeys``) is kept for the first
    :data:`ITEMS_KEPT` ads in input order only; ``itemsOmitted`` counts the ads sent after them (counted in the
    figures, not listed): memory stays bounded whatever the input (an endless stdin). ``acceptedPerSecond`` is
    the ads newly queued a second; ``answeredPerSecond`` every ad the API answered (accepted, duplicate or
    refused) a second. Returns the summary so far and, with ``follow`` (``--wait``), the ids of the ads newly
    accepted among the first :data:`FOLLOWED_MAX` (in input order; ``notFollowed`` counts the others). If the API
    cannot be reached before any ad was accepted, stops and raises :class:`ApiUnreachable`. Ctrl-C stops sending,
    lets the requests in flight finish, and returns the summary of what was sent with ``interrupted: true``.

    A batch that went out and got no answer (:class:`NoAnswer`) may have been queued: its ads are not rejected
    (if no ad was accepted before it, sending stops there and ``notSent`` counts the ads never sent) but counted
    as "may be queued" (``maybeQueuedUnknown``: their ids never came back; with ``idempotency_key``,
    whose ``KEY-N`` per ad, N its input index, lets the client send the batch again first, :mod:`gamead_cli.retry`,
    their keys in ``maybeQueuedKeys``: the same command with the same key settles them, queueing nothing twice).
    """
    lock = threading.Lock()
    stop = threading.Event()
    slots = threading.BoundedSemaphore(concurrency * 2)
    rejected: Counter[str] = Counter()
    listed: dict[int, dict[str, str]] = {}  #: input index → rejection: the first REJECTIONS_LISTED, input order
    unsure: dict[int, str] = {}  #: input index (< ITEMS_KEPT) → id of an ad whose publish got no answer (adId)
    unknown: list[int] = []  #: input indexes (< ITEMS_KEPT) of ads whose batch got no answer (ids unknown)
    counts = {"accepted": 0, "duplicates": 0, "split": 0, "unsure": 0, "unknown": 0, "answered": 0}
    fatal: list[ApiUnreachable] = []
    sent = 0
    size = max(1, min(batch_size, int(rate / 10) if rate > 0 else batch_size))  # ≥ 10 requests/s when paced
    limit = {"size": size}  # lowered when the API says its api.batch_max is smaller

    def keyed(index: int, ad: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**ad, "idempotencyKey": f"{idempotency_key}-{index}"} if idempotency_key else ad

    items: dict[int, dict[str, Any]] = {}  #: input index (< ITEMS_KEPT) → what became of that ad (keep_items)
    order: dict[int, str] = {}  #: input index → id of a newly accepted ad (input order at the end)
    #: the ads whose id is kept in ``order``: those listed in acceptedIds (-o json), those --wait follows
    ids_kept = max(ITEMS_KEPT if keep_items else 0, FOLLOWED_MAX if follow else 0)

    def reject(index: int, where: str, code: str, message: str) -> None:  # under the lock
        rejected[code] += 1
        keep_first(listed, index, {"where": where, "code": code, "message": message}, REJECTIONS_LISTED)
        if keep_items and index < ITEMS_KEPT:
            items[index] = {"where": where, "outcome": "rejected", "code": code, "message": message}

    def done(index: int, where: str, outcome: str, ad_id: str | None) -> None:  # under the lock
        if keep_items and index < ITEMS_KEPT:
            items[index] = {"where": where, "outcome": outcome, "id": ad_id}
            if ad_id is None and idempotency_key:
                items[index]["idempotencyKey"] = f"{idempotency_key}-{index}"

    def labelled(index: int, item: Any) -> tuple[str, Any]:
        return (item.where, item.ad) if isinstance(item, Labeled) else (f"ad {index + 1}", item)

    with _progress() as progress:
        task = progress.add_task("submitting", total=total, info="")

        def one(chunk: list[Item]) -> None:
            try:
                send(chunk)
            except Exception as exc:  # a chunk that could not be sent is counted and named, never dropped
                with lock:
                    for i, item in chunk:
                        reject(i, labelled(i, item)[0], "not_sent", f"not sent: {type(exc).__name__}: {exc}"[:200])
                raise
            finally:
                slots.release()

        def post(good: list[tuple[int, str, Mapping[str, Any]]]) -> list[tuple[int, str, Any]]:
            """(index, where, result or GameadError) for each ad; splits on a size refusal."""
            try:
                results = client.submit_batch([keyed(i, ad) for i, _, ad in good])["results"]
                if not isinstance(results, list) or len(results) != len(good):
                    raise GameadError(f"the API answered {len(results)} results for {len(good)} ads")
            except ApiClientError as exc:
                if exc.code in SIZE_REFUSALS and len(good) > 1 and not isinstance(exc, ApiUnreachable):
                    most = exc.details.get("max") if isinstance(exc.details, dict) else None
                    part = most if isinstance(most, int) and 0 < most < len(good) else (len(good) + 1) // 2
                    with lock:
                        limit["size"] = min(limit["size"], part)
                        counts["split"] += 1
                    return [r for k in range(0, len(good), part) for r in post(good[k:k + part])]
                if isinstance(exc, ApiUnreachable):
                    with lock:
                        if counts["accepted"] + counts["duplicates"] == 0:
                            if not isinstance(exc, NoAnswer):  # one that got no answer may be queued: counted
                                fatal.append(exc)
                            stop.set()
                return [(i, where, exc) for i, where, _ in good]
            except GameadError as exc:  # the whole request was refused (429, 503…): every ad of it
                return [(i, where, exc) for i, where, _ in good]
            return [(i, where, body) for (i, where, _), body in zip(good, results, strict=True)]

        def settle(i: int, where: str, body: Any) -> None:  # under the lock: what became of one ad
            error = body.get("error") if isinstance(body, dict) else None
            # an answer of the API: any per-ad result, or the whole request refused (not a local bad line)
            counts["answered"] += isinstance(body, dict) or (isinstance(body, ApiClientError)
                                                             and not isinstance(body, ApiUnreachable))
            if isinstance(body, NoAnswer):  # sent, never answered: it may be queued (not rejected)
                counts["unknown"] += 1
                if i < ITEMS_KEPT:
                    unknown.append(i)
                done(i, where, "maybeQueued", None)
            elif isinstance(body, GameadError):
                reject(i, where, body.code, body.message)
            elif (maybe := maybe_queued_id(error)) is not None:
                counts["unsure"] += 1  # its publish got no answer: it may still be analysed
                if i < ITEMS_KEPT:
                    unsure[i] = maybe
                done(i, where, "maybeQueued", maybe)
            elif isinstance(error, dict):
                reject(i, where, str(error.get("code") or "error"), rejection_text(error))
            elif not isinstance(body, dict) or "id" not in body:
                reject(i, where, "bad_answer", "the API's answer has no ad id")
            elif body.get("duplicate"):
                counts["duplicates"] += 1
                done(i, where, "duplicate", str(body["id"]))
            else:
                counts["accepted"] += 1
                if i < ids_kept:
                    order[i] = str(body["id"])
                done(i, where, "accepted", str(body["id"]))

        def send(chunk: list[Item]) -> None:
            """Send one chunk and count what became of each ad; the ads whose own error says NATS took nothing of
            them (:func:`gamead_cli.retry.resendable`) are sent again after the back-off (or their
            ``retryAfter``) within ``client.retry_for`` of the chunk's start, the others counted at once (a
            Ctrl-C during the wait counts those as answered)."""
            named = [(i, *labelled(i, item)) for i, item in chunk]
            good = [(i, where, ad) for i, where, ad in named if not isinstance(ad, GameadError)]
            answers: list[tuple[int, str, Any]] = [(i, where, ad) for i, where, ad in named
                                                   if isinstance(ad, GameadError)]
            deadline = time.monotonic() + client.retry_for
            answers += post(good) if good else []
            for attempt in itertools.count(1):
                again = {i: body["error"] for i, _, body in answers
                         if isinstance(body, dict) and retry.resendable(body.get("error"))}
                wait = None if not again or stop.is_set() else retry.next_wait(
                    attempt, retry.ad_retry_after(list(again.values())), deadline - time.monotonic())
                if wait is None:
                    again = {}
                with lock:
                    for i, where, body in answers:
                        if i not in again:
                            settle(i, where, body)
                    info = (f"{counts['accepted']} ok" + (f", {sum(rejected.values())} rejected" if rejected else "")
                            + (f", {maybe} may still be queued" if (maybe := counts["unsure"] + counts["unknown"])
                               else ""))
                progress.update(task, advance=len(answers) - len(again), info=info)
                if not again:
                    return
                answers = [a for a in answers if a[0] in again]
                if stop.wait(wait):  # Ctrl-C or a fatal error meanwhile: they stay as answered
                    with lock:
                        for i, where, body in answers:
                            settle(i, where, body)
                    progress.update(task, advance=len(answers))
                    return
                client.count_retry()
                answers = post([g for g in good if g[0] in again])

        start = time.monotonic()
        interrupted = False
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gamead-submit")
        futures: list[Future[None]] = []
        try:
            for chunk in _chunks(enumerate(ads), lambda: limit["size"]):
                if rate > 0 and _pace(stop, start + chunk[-1][0] / rate):  # its last ad's turn
                    break
                slots.acquire()
                if stop.is_set():
                    slots.release()
                    break
                futures.append(pool.submit(one, chunk))
                sent += len(chunk)
                if len(futures) > 4 * concurrency:  # those done and counted go: a long stream keeps no list of all
                    futures = [f for f in futures if not _counted(f)]
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            client.cancel_retries()
        try:
            pool.shutdown(wait=True)  # the requests in flight finish (each bounded by the client timeout)
        except KeyboardInterrupt:  # the first Ctrl-C after the last send: stop the resends, let those finish
            stop.set()
            client.cancel_retries()
            try:
                if interrupted:  # a second Ctrl-C: do not wait for them
                    raise
                interrupted = True
                # not pool.shutdown again: a join cut by KeyboardInterrupt may not wait a second time (CPython)
                wait_futures(futures)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
        elapsed = time.monotonic() - start
        for future in futures:  # every future is read: an exception not counted in one() (none is) surfaces here
            if future.done() and not future.cancelled() and not isinstance(future.exception(), Exception):
                future.result()

    if fatal and counts["accepted"] + counts["duplicates"] == 0 and not counts["unknown"]:
        raise fatal[0]
    kept = sorted(order)  # input order: the batches answer in any order
    ids = [order[i] for i in kept if i < FOLLOWED_MAX] if follow else []  # what --wait follows
    summary: dict[str, Any] = {
        "sent": sent,
        "accepted": counts["accepted"],
        "duplicates": counts["duplicates"],
        "rejected": dict(rejected),  # by code, counted after the client's retries (gamead_cli.retry)
        "retried": client.retried,  # requests sent again after a 429, a 503 or a lost connection
        "elapsedSeconds": round(elapsed, 3),
        "ratePerSecond": round(sent / elapsed, 1) if elapsed > 0 else 0.0,  # ads sent a second
        # ads newly queued a second (not duplicates: those were queued by an earlier run)
        "acceptedPerSecond": round(counts["accepted"] / elapsed, 1) if elapsed > 0 else 0.0,
        # ads the API answered a second, whatever the answer (accepted, duplicate or refused)
        "answeredPerSecond": round(counts["answered"] / elapsed, 1) if elapsed > 0 else 0.0,
        "targetRate": rate or None,
        # the first REJECTIONS_LISTED rejected ads in input order (whatever order they were answered in)
        "rejections": [listed[i] for i in sorted(listed)],
        "rejectionsNotListed": max(0, sum(rejected.values()) - len(listed)),
        # neither accepted nor rejected: their publish (or their whole batch) got no answer in time, so they may
        # still be analysed; every id, to look up (gamead ads get), and the keys of those whose id never came back
        "maybeQueued": counts["unsure"] + counts["unknown"],
        "maybeQueuedIds": [unsure[i] for i in sorted(unsure)],
        # of those, the ones whose whole batch got no answer: ids unknown (found in `gamead ads list`); with
        # --idempotency-key their keys, which the same command with the same key settles (nothing queued twice)
        "maybeQueuedUnknown": counts["unknown"],
        "maybeQueuedKeys": [f"{idempotency_key}-{i}" for i in sorted(unknown)] if idempotency_key else [],
        "idempotencyKey": idempotency_key,
        # ads sent past the first ITEMS_KEPT: in every count above, not in items / acceptedIds / the id lists
        "itemsOmitted": max(0, sent - ITEMS_KEPT),
    }
    if keep_items:
        summary["acceptedIds"] = [order[i] for i in kept if i < ITEMS_KEPT]
        summary["items"] = [items[i] for i in sorted(items)]
    if follow:
        summary["notFollowed"] = counts["accepted"] - len(ids)  # accepted past the first FOLLOWED_MAX ads
    if counts["split"]:
        summary["batchSize"] = limit["size"]  # the API refused bigger batches (api.batch_max)
    if interrupted:
        summary["interrupted"] = True
    elif stop.is_set() and total is not None and sent < total:  # a batch got no answer before any was accepted
        summary["notSent"] = total - sent  # stopped there rather than wait on an API that answers nothing
    return summary, ids


def wait_many(client: ApiClient, ids: list[str], *, timeout: float, concurrency: int) -> dict[str, Any]:
    """Poll the accepted ads until all are terminal or ``timeout`` passes; return the wait summary."""
    pending = list(ids)
    final: dict[str, tuple[str, float | None]] = {}  #: id → (status, latency): not the whole record (~2 KB)
    window = max(64, concurrency * 8)

    def fetch(ad_id: str) -> dict[str, Any] | None:
        try:
            return client.get_ad(ad_id)
        except GameadError:  # a transient failure: try again next round
            return None

    deadline = time.monotonic() + timeout
    interrupted = False
    with _progress() as progress, ThreadPoolExecutor(concurrency, thread_name_prefix="gamead-wait") as pool:
        task = progress.add_task("analysing", total=len(ids), info="")
        try:
            while pending:
                batch = pending[:window]
                for ad_id, record in zip(batch, pool.map(fetch, batch), strict=True):
                    if record is not None and record.get("status") in TERMINAL:
                        final[ad_id] = (str(record.get("status")), _latency(record))
                done = set(final)
                pending = [i for i in pending if i not in done]
                failed = sum(1 for status, _ in final.values() if status in FAILED)
                progress.update(task, completed=len(final), info=f"{failed} failed" if failed else "")
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0:
                    break
                time.sleep(min(0.25, remaining))
        except KeyboardInterrupt:  # stop waiting; the summary says what finished so far
            interrupted = True

    from gamead_core.registry import percentiles  # the one percentile definition (imports nats: on use)

    statuses = Counter(status for status, _ in final.values())
    latencies = [lat for _, lat in final.values() if lat is not None]
    spread = percentiles(latencies)
    p50, p95 = (spread.p50, spread.p95) if latencies else (None, None)
    summary: dict[str, Any] = {
        "completed": statuses["completed"],
        "failed": statuses["failed"],
        "dead": statuses["dead"],
        "pending": len(pending),
        "latencyP50Seconds": round(p50, 3) if p50 is not None else None,
        "latencyP95Seconds": round(p95, 3) if p95 is not None else None,
    }
    if interrupted:
        summary["interrupted"] = True
    return summary


def generated_ads(count: int, seed: int, overrides: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """``count`` generated ads with ``overrides`` (from a file and/or flags) applied to each: a field overridden
    under either of its names replaces the generated one (:func:`~gamead_cli.ad_fields.with_overrides`)."""
    for ad in generate_ads(count, seed):
        yield with_overrides(ad, overrides)


def submit_bulk(
    client: ApiClient,
    ads: Iterable[Mapping[str, Any] | GameadError],
    *,
    count: int | None,
    rate: float,
    concurrency: int,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    output: OutputFormat,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Send ``ads`` (``count`` of them, if known) in batches, maybe await the analyses, print the summary;
    return the exit code."""
    summary, ids = send_many(
        client,
        ads,
        total=count,
        rate=rate,
        concurrency=concurrency,
        idempotency_key=idempotency_key,
        batch_size=batch_size,
        keep_items=output == OutputFormat.json,
        follow=wait,
    )
    if wait and ids and not summary.get("interrupted"):
        summary.update(wait_many(client, ids, timeout=timeout, concurrency=concurrency))
    elif wait:
        summary.update(
            completed=0, failed=0, dead=0, pending=len(ids), latencyP50Seconds=None, latencyP95Seconds=None
        )
    emit(summary, output, partial(summary_view, again=client.again))
    if output != OutputFormat.json:
        for line in rejections_lines(summary):
            red_line(line)
    if summary.get("interrupted"):
        error_line(f"interrupted: {summary['sent']} of {count if count is not None else '?'} ad(s) sent")
        return exitcodes.INTERRUPTED
    if wait and summary["failed"] + summary["dead"]:
        return exitcodes.AD_FAILED
    if (summary["rejected"] or summary.get("pending") or summary.get("maybeQueued") or summary.get("notSent")
            or summary.get("notFollowed")):  # accepted, but --wait did not follow them: not known to be analysed
        return exitcodes.ERROR
    return exitcodes.OK


# --- the command -----------------------------------------------------------------------------------


def submit(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="JSON file with one ad (spec fields, camelCase) or an array of ads, or NDJSON (one ad a line: "
            "*.ndjson, *.jsonl or --ndjson); several ads go in batches; '-' reads stdin. Flags override it.",
            show_default=False,
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", "-t", help="Ad title.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="Ad description.")] = None,
    genre: Annotated[str | None, typer.Option("--genre", "-g", help="Game genre, e.g. rpg.")] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", "-a", help="Target audience; repeat for several.")
    ] = None,
    visual: Annotated[
        list[str] | None, typer.Option("--visual", help="Visual element; repeat for several.")
    ] = None,
    cta: Annotated[str | None, typer.Option("--cta", help="Call to action, e.g. 'Download now'.")] = None,
    duration: Annotated[
        int | None, typer.Option("--duration", min=1, max=600, help="Ad length in seconds (1-600).")
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", "-p", min=1, max=5, help="1 most urgent … 5 least (default 3)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Resubmitting with the same key returns the first ad (duplicate=true)."
            " With --count: KEY-0, KEY-1, … (1-200 printable ASCII characters, no comma).",
            callback=idempotency_key_arg,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", "-w", help="Wait until analysed, then show the analysis (exit 6 if failed)."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", callback=bounded_float(0, MAX_WAIT_SECONDS),
                            help="Seconds --wait waits before giving up (at most 7 days).")
    ] = 60.0,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", min=1, help="Send N generated ads (flags/file fields override theirs)."
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", "-r", callback=bounded_float(MIN_RATE, MAX_RATE, zero=True),
                            help=f"With --count: ads per second, {MIN_RATE:g} to {MAX_RATE:,.0f}; 0 = max.")
    ] = 0.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="With --count: requests in flight.")
    ] = 16,
    seed: Annotated[int, typer.Option("--seed", help="With --count: seed of the generated ads.")] = 0,
    ndjson: Annotated[
        bool, typer.Option("--ndjson", help="FILE holds one ad a line (implied by *.ndjson, *.jsonl).")
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=10_000,
                     help="With --count or NDJSON: ads per POST /ads/batch request; a batch over the API's api.batch_max "
                          "is split to it and resent (nothing is sent twice)."),
    ] = BATCH_SIZE,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the ad's id, e.g. ID=$(gamead submit … -q).")
    ] = False,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    flags = ad_from_flags(
        title=title,
        description=description,
        genre=genre,
        audience=audience,
        visual=visual,
        cta=cta,
        duration=duration,
        priority=priority,
    )
    bulk_file = is_ndjson(file, ndjson)
    if bulk_file and not file:
        raise typer.BadParameter("--ndjson reads FILE ('-' for stdin): give one", param_hint="--ndjson")
    if bulk_file and count is not None:
        raise typer.BadParameter("sends generated ads: it does not go with an NDJSON file", param_hint="--count")
    if count is None and not file and not flags:
        raise typer.BadParameter(
            "nothing to submit: give a JSON file, '-' for stdin, field flags (--title …), or --count N"
        )
    loaded = load_ad_input(file) if file and not bulk_file else {}
    array = loaded if isinstance(loaded, list) else None  # a JSON array of ads: sent as a batch, as NDJSON
    if array is not None and count is not None:
        raise typer.BadParameter("sends generated ads: it does not go with a file of several ads", param_hint="--count")
    overrides = with_overrides(loaded if isinstance(loaded, dict) else {}, flags)
    if count is None and not file:
        overrides = complete_flag_ad(overrides)
    if quiet and (count is not None or bulk_file or array is not None):
        raise typer.BadParameter("prints the id of one ad: it does not go with --count", param_hint="--quiet")

    settings = client_settings_from(config, api)  # --api, env, config, else the stack running here
    with ApiClient.from_settings(settings.client, max_connections=concurrency) as client:
        client.again = reach_again(api, config, client.api_url)
        if count is None and not bulk_file and array is None:
            code = submit_one(client, overrides, idempotency_key=idempotency_key, wait=wait, timeout=timeout,
                              output=output, quiet=quiet)
        else:
            if array is not None:
                assert file is not None
                labelled = ads_of_array(file, array, flags)
                total, ads = len(labelled), iter(labelled)
            elif bulk_file:
                assert file is not None
                ads = first_read(read_ndjson(file, overrides))  # a file that is not NDJSON: refused first,
                total = count_ndjson(file)  # before the count reads it whole
            else:
                assert count is not None
                total, ads = count, generated_ads(count, seed, overrides)
            if idempotency_key and total:  # the API's rule holds for the longest key sent, KEY-(N-1), too
                idempotency_key_arg(f"{idempotency_key}-{total - 1}")
            code = submit_bulk(
                client,
                ads,
                count=total,
                rate=rate,
                concurrency=concurrency,
                idempotency_key=idempotency_key,
                wait=wait,
                timeout=timeout,
                output=output,
                batch_size=batch_size,
            )
    if code != exitcodes.OK:
        raise typer.Exit(code)
