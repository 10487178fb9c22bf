"""``gamead dlq export`` / ``import`` files: JSON Lines of DLQ entries read and checked one line at a time,
sent in batches of one request each (validated first, then imported as jobs), and what an export says of
ads that changed while it paged."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import typer
from rich.text import Text

from gamead_cli.api_words import cli_words
from gamead_cli.commands.dlq_jobs import follow_job, job_progress
from gamead_cli.exitcodes import Interrupted, OutputFailed
from gamead_cli.formats import counted
from gamead_cli.once_per_ad import OncePerAd
from gamead_cli.options import api_client
from gamead_cli.output import note_line, stderr_console
from gamead_cli.stops import signals_interrupt, stopped_by
from gamead_core.errors import ApiClientError, GameadError

if TYPE_CHECKING:
    from gamead_cli.atomic import PendingFile

IMPORT_BATCH_BYTES = 48 * 1024  #: one import request's entries (the API refuses bodies over api.max_body_bytes)
IMPORT_BATCH_ENTRIES = 500
MAX_IMPORT_BYTES = 256 * 1024**2  #: largest file `dlq import` reads (and keeps a private copy of)
#: longest line `dlq import` reads: one entry must fit in one import request (the API's api.max_body_bytes,
#: 64 KiB by default, with the request's wrapping); a longer one is named, never read whole
MAX_IMPORT_LINE_BYTES = IMPORT_BATCH_BYTES


def say_changed(once: OncePerAd) -> None:
    """On stderr: how many ads' entries changed while ``dlq export`` paged (replayed and dead again: met twice),
    and which entry the output kept (:class:`gamead_cli.once_per_ad.OncePerAd`)."""
    ads = counted(once.changed)
    if once.take_back:
        note_line(f"{ads} changed during the export (replayed and dead again): written once each, its newest entry")
    else:
        stderr_console().print(Text(
            f"{ads} changed during the export (replayed and dead again): written once each with its first entry, "
            "which is no longer in the DLQ; this output is not a consistent snapshot (export to a regular FILE to "
            "keep the newest entries)", style="yellow"), soft_wrap=True)


def entries_of(fh: IO[bytes], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, entry)`` for every non-blank line of the JSONL file open in ``fh`` (named ``where`` in
    messages), read and checked one line at a time: memory is one line (at most :data:`MAX_IMPORT_LINE_BYTES`,
    :func:`gamead_cli.inputs.bounded_lines`) whatever the file, and a fault stops the reading where it is.
    Raises :class:`gamead_cli.inputs.BadInputFile` (exit 2) for a file larger than :data:`MAX_IMPORT_BYTES` or
    that cannot be read, and naming ``FILE:LINE`` for a line longer than :data:`MAX_IMPORT_LINE_BYTES`, not UTF-8
    (UTF-16/32 refused, a UTF-8 BOM dropped), not strict JSON (``NaN``, ``Infinity`` included), not a JSON
    object, or an object without ``adId`` (every DLQ entry names its ad: a file of ads is refused at line 1)."""
    from gamead_cli.inputs import BadInputFile, TooLarge, bounded_lines, json_line

    try:
        for n, line in bounded_lines(fh, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_BYTES, skip_blank=True):
            if line is not None and not line.strip():
                continue
            try:
                entry = json_line(n, line, where, MAX_IMPORT_LINE_BYTES)
            except BadInputFile as exc:
                if line is None:
                    raise BadInputFile(where, f"{exc.problem} (an entry must fit in one API request)", n) from None
                raise
            if not isinstance(entry, dict):
                raise BadInputFile(where, "not a JSON object (expected JSON Lines from `gamead dlq export`)", n)
            if "adId" not in entry:
                raise BadInputFile(where, "not a DLQ entry (no adId; expected JSON Lines from `gamead dlq export`)",
                                   n)
            yield n, entry
    except TooLarge:
        raise BadInputFile(where, f"larger than {MAX_IMPORT_BYTES // 1024**2} MiB; split it") from None
    except OSError as exc:
        raise BadInputFile(where, f"cannot be read ({exc.strerror or exc})") from None


def read_entries(file: str) -> list[tuple[int, dict[str, Any]]]:
    """:func:`entries_of` the file ``file`` (``-`` = stdin), as a list (a small file: ``dlq import`` itself
    streams). Raises as :func:`entries_of`, and :class:`gamead_cli.inputs.BadInputFile` for a file that does not
    exist, cannot be read or is not a regular file."""
    from gamead_cli.inputs import input_name, open_input

    fh = open_input(file, verb="gamead dlq import")
    try:
        refuse_too_large(fh, input_name(file))
        return list(entries_of(fh, input_name(file)))
    finally:
        if file != "-":
            fh.close()


def refuse_too_large(fh: IO[bytes], where: str) -> None:
    """Refuse a regular file (or stdin redirected from one) with more than :data:`MAX_IMPORT_BYTES` left to read,
    by its size, before a byte of it is read or copied (review30b F10: 256 MiB were copied to $TMPDIR and parsed
    first); a pipe is bounded as it is read (:func:`entries_of`). Raises :class:`gamead_cli.inputs.BadInputFile`
    (exit 2), as the bound met while reading does."""
    from gamead_cli.inputs import BadInputFile

    try:
        info = os.fstat(fh.fileno())
        left = info.st_size - os.lseek(fh.fileno(), 0, os.SEEK_CUR) if stat.S_ISREG(info.st_mode) else 0
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's stdin): bounded as it is read
        return
    if left > MAX_IMPORT_BYTES:
        raise BadInputFile(where, f"larger than {MAX_IMPORT_BYTES // 1024**2} MiB ({left:,} bytes); split it")


def copy_failed(exc: OSError, where: str) -> OutputFailed:
    """The error of a private copy of ``where`` that cannot be made or written (``ENOSPC``, ``EFBIG``, ``EACCES``…):
    it names the directory, not the input (review30b F10: "FILE cannot be read (No space left on device)"). Exit 1."""
    try:
        into = tempfile.gettempdir()
    except OSError:  # no usable directory at all
        into = os.environ.get("TMPDIR") or "$TMPDIR"
    return OutputFailed(f"cannot keep a private copy of {where} in {into}: {exc.strerror or exc}; set TMPDIR to a "
                        f"directory with room for it (up to {MAX_IMPORT_BYTES // 1024**2} MiB)")


class Tee:
    """``readline`` of a binary file that also writes what it read to ``copy`` (stdin, read again from it); a
    write to the copy that fails raises :func:`copy_failed` (not an OSError: :func:`entries_of` would blame FILE)."""

    def __init__(self, fh: IO[bytes], copy: IO[bytes], where: str) -> None:
        self.fh, self.copy, self.where = fh, copy, where

    def readline(self, limit: int = -1) -> bytes:
        data: bytes | str = self.fh.readline(limit)
        if isinstance(data, str):  # a text stdin (tests): same bytes
            data = data.encode("utf-8", "surrogateescape")
        try:
            self.copy.write(data)
        except OSError as exc:
            raise copy_failed(exc, self.where) from None
        return data

    def peek(self, size: int = 0) -> bytes:
        """What the next reads give, unread (blank runs are passed in bulk: attack40a F3); ``b""`` when ``fh``
        cannot tell (a text stdin in tests), which then reads line by line."""
        peek = getattr(self.fh, "peek", None)
        data = peek(size) if peek is not None else b""
        return data if isinstance(data, bytes) else b""

    def read(self, size: int) -> bytes:
        """``size`` bytes of ``fh`` (after :meth:`peek`: those it showed), written to the copy as lines are."""
        data: bytes = self.fh.read(size)
        try:
            self.copy.write(data)
        except OSError as exc:
            raise copy_failed(exc, self.where) from None
        return data


def checked_copy(fh: IO[bytes], where: str) -> tuple[int, IO[bytes]]:
    """Every line of ``fh`` checked (:func:`entries_of`) while a private copy is kept, which ``dlq import`` reads
    again (stdin, and a FILE changed meanwhile, import what was checked: attack30c F7): (the entries counted, the
    copy). The copy is an anonymous temporary file in :func:`tempfile.gettempdir` (``$TMPDIR``, else ``/tmp``:
    Python's order), at most :data:`MAX_IMPORT_BYTES` and a line; a regular file over it is refused first
    (:func:`refuse_too_large`). Raises as :func:`entries_of`, and :func:`copy_failed` (exit 1) naming the directory
    when the copy cannot be made or written."""
    refuse_too_large(fh, where)
    try:
        copy = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise copy_failed(exc, where) from None
    try:
        lines = sum(1 for _ in entries_of(Tee(fh, copy, where), where))  # type: ignore[arg-type]
        try:
            copy.flush()  # the last bytes' write fails here, not later in a seek that would blame nothing
        except OSError as exc:
            raise copy_failed(exc, where) from None
    except BaseException:
        with contextlib.suppress(OSError):  # a buffer that cannot be written fails the close too
            copy.close()
        raise
    return lines, copy


def import_batches(entries: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """``entries`` in lists of at most :data:`IMPORT_BATCH_ENTRIES` and about :data:`IMPORT_BATCH_BYTES` of
    JSON (one request each), read lazily: one batch in memory at a time."""
    batch: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for item in entries:
        n = len(json.dumps(item[1], separators=(",", ":")))
        if batch and (size + n > IMPORT_BATCH_BYTES or len(batch) >= IMPORT_BATCH_ENTRIES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def _invalid_line(file: str, batch: list[tuple[int, dict[str, Any]]], exc: ApiClientError) -> typer.BadParameter:
    """A 422 on ``entries.N.field`` → ``FILE:LINE: field: why``: bad input, exit 2, as a line that is not JSON
    (:class:`gamead_cli.inputs.BadInputFile`)."""
    from gamead_cli.inputs import BadInputFile, input_name

    for item in exc.details if isinstance(exc.details, list) else []:
        loc = str(item.get("loc", "")) if isinstance(item, dict) else ""
        parts = loc.split(".")
        index = parts[1] if len(parts) >= 2 and parts[0] == "entries" else ""
        if index.isascii() and index.isdigit() and int(index) < len(batch):
            field = ".".join(parts[2:]) or "(entry)"
            return BadInputFile(input_name(file), f"{field}: {item.get('msg')} (nothing was imported)",
                                batch[int(index)][0])
    return BadInputFile(input_name(file), f"{exc.message} (nothing was imported)")


def import_entries(file: str, batches: Callable[[], Iterator[list[tuple[int, dict[str, Any]]]]], lines: int,
            config: str | None, api: str | None) -> dict[str, Any]:
    """Send the ``lines`` entries ``batches()`` yields (a fresh pass over the file each call, one batch in memory
    at a time): every batch validated first (``dryRun``: a 422 names ``file:line``, exit 2, nothing written),
    then imported batch by batch, each job followed to its end. Returns the totals ``dlq import`` prints.
    Cut short after the first import request (a job that did not succeed, the API lost, Ctrl-C: exit 130), the
    error says what was imported, which lines were not sent, and that the same command again skips the entries
    already imported (:func:`_cut_short`, attack30c F12, F13)."""
    totals: dict[str, Any] = {"lines": lines, "imported": 0, "skipped": 0, "skippedReasons": {}, "jobs": []}
    with signals_interrupt(), api_client(config, api) as client:  # SIGTERM/SIGHUP as Ctrl-C (review30b F5)
        # validate everything first; a file of no entries too, as an empty batch: the API is reached (exit 3 if
        # not) and takes imports from this caller, as for every verb (regress44 F4: `imported 0 of 0 lines`, exit
        # 0, said of an --api never contacted)
        for batch in itertools.chain(batches(), [[]] if not lines else []):
            try:
                client.request("POST", "/v1/dlq/import", json={"entries": [e for _, e in batch], "dryRun": True})
            except ApiClientError as exc:
                if exc.status == 422:
                    raise _invalid_line(file, batch, exc) from None
                raise
        with job_progress() as progress:
            task = progress.add_task("importing", total=lines)
            done = 0  # entries of the batches whose job ended
            batch: list[tuple[int, dict[str, Any]]] = []
            job: dict[str, Any] | None = None  # the job of ``batch``, once started
            try:
                for batch in batches():
                    job = None
                    job = client.request("POST", "/v1/dlq/import", json={"entries": [e for _, e in batch]})
                    final = follow_job(client, job, quiet=True, detach=False)
                    counts = final.get("counts") or {}
                    totals["jobs"].append(final["id"])
                    totals["imported"] += counts.get("imported", 0)
                    totals["skipped"] += counts.get("skipped", 0)
                    for why, n in (final.get("skippedReasons") or {}).items():
                        totals["skippedReasons"][why] = totals["skippedReasons"].get(why, 0) + n
                    progress.advance(task, len(batch))
                    done += len(batch)
                    if final.get("state") != "succeeded":
                        break
                else:
                    return totals
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted ({stopped_by()}){_cut_short(totals, done, batch, job, client)}",
                                  details=totals) from None
            except GameadError as exc:  # the API lost, an answer refused: its code and exit code kept
                said = exc.message
                exc.message = f"{said.rstrip('.')}{_cut_short(totals, done, batch, job, client, said=said)}"
                raise
    said = cli_words(str(final.get("stopReason")), client.again)
    raise GameadError(f"import job {final['id']} {final.get('state')}: {said}"
                      f"{_cut_short(totals, done, batch, None, client, ended=True)}", details=totals)


def _cut_short(totals: dict[str, Any], done: int, batch: list[tuple[int, dict[str, Any]]],
               job: dict[str, Any] | None, client: Any, *, ended: bool = False, said: str = "") -> str:
    """What an import cut short after its first import request adds to its error: ``; imported N of M lines
    (skipped K) by jobs …[; job J (lines A-B) goes on on the server: …]; the U lines after line B were not sent;
    run the same command again: entries already imported are skipped (identical)``. ``done``: the entries of the
    batches whose job ended; ``batch``: the last batch read, ``ended`` when its job ended (counted in ``done``),
    else ``job`` its job still running (Ctrl-C or the API lost while following it), or None when its request
    failed (then the lines from its first on were not sent); ``said``: the error's own text (a job it names
    already is not named again). Pure but for ``client.again`` (the follow-up's flags)."""
    from gamead_cli.program import follow_up

    skipped = f" (skipped {totals['skipped']:,})" if totals["skipped"] else ""
    ids = totals["jobs"]
    jobs = ("" if not ids else f" by job {ids[0]}" if len(ids) == 1  # none: newcomer35 F4 said "by jobs ;"
            else f" by jobs {', '.join(ids)}" if len(ids) <= 3 else f" by {len(ids):,} jobs ({ids[0]} … {ids[-1]})")
    text = f"; imported {totals['imported']:,} of {totals['lines']:,} lines{skipped}{jobs}"
    first, last = (batch[0][0], batch[-1][0]) if batch else (1, 0)
    unsent, where = totals["lines"] - done, f"after line {last}"
    if job is not None and not ended:
        text += "" if job["id"] in said else (f"; job {job['id']} (lines {first}-{last}) goes on on the server: "
                 f"{follow_up('dlq', 'jobs', job['id'], again=client.again)}")
        unsent -= len(batch)
    elif not ended:
        where = f"from line {first} on"
    if unsent > 0:
        text += f"; the {counted(unsent, 'line')} {where} {'were' if unsent != 1 else 'was'} not sent"
    return text + "; run the same command again: entries already imported are skipped (identical)"


def export_failed(pending: PendingFile | None, written: list[int]) -> str:
    """What a failed export to FILE says after "cannot write FILE: why": a regular FILE is left as it was
    ("nothing was exported"); a device or a FIFO (``tmp`` None) may have passed on the first lines already (attack27b
    F9: ``dlq export /dev/stdout | head -c 100`` said "nothing was exported" after its reader had read some)."""
    if pending is None or pending.tmp is not None or written[0] == 0:
        return "; nothing was exported"
    return f"; the export was cut short: at most the first {counted(written[0], 'entry', 'entries')} reached it"
