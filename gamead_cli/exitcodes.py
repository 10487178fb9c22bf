"""Exit codes of the ``gamead`` command. Scripts may rely on them.

:data:`TABLE` is the one list of them; the README's exit-code table is checked against it by a test.
The root group (``gamead_cli.root``) maps every failure to one of these; commands never call
``sys.exit`` with a number of their own.
"""

from __future__ import annotations

from gamead_core.errors import ApiClientError, ApiUnreachable, ConfigError, GameadError, NatsUnreachable, NotFound

OK = 0
ERROR = 1  #: the request failed, or any unexpected error (the message says why)
USAGE = 2  #: bad usage: flags, arguments, an input file missing or not JSON (Click's own code)
UNREACHABLE = 3  #: the API (or NATS) could not be reached, or the URL is not a gamead API
NOT_FOUND = 4  #: the named ad / entry / job does not exist
CONFIG = 5  #: the configuration is invalid (config file or GAMEAD_* variable)
AD_FAILED = 6  #: ``submit --wait`` ended with the ad failed or dead
INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT, the shell convention)
HUNG_UP = 129  #: SIGHUP (128 + 1), handled as Ctrl-C (:mod:`gamead_cli.stops`, :mod:`gamead_cli.first_signals`)
TERMINATED = 143  #: SIGTERM (128 + 15), handled as Ctrl-C (:mod:`gamead_cli.stops`, :mod:`gamead_cli.first_signals`)
#: stdout's reader went away (``| head -1``): 128 + SIGPIPE, what a coreutils tool's death by SIGPIPE shows a shell
#: (``set -o pipefail`` sees it; a plain pipeline shows the reader's own status). left39b: it was 1, as a failure
READER_GONE = 141

#: (code, meaning) in the order the README shows them.
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (ERROR, "the request failed, or its output could not be written (stdout or a FILE it writes: a full disk, an "
            "I/O error; the line names where; also the private copy `dlq import` keeps in `$TMPDIR`; stdout's reader "
            "gone early is 141, below), or an unexpected error (the message says why; `--debug` shows the "
            "traceback)"),
    (USAGE, "bad usage: flags, arguments (a flag value that is not text in the locale's encoding — a non-ASCII "
            "`--title` under `LC_ALL=C` with Python's UTF-8 mode off — is refused naming the flag: use a UTF-8 locale "
            "or `PYTHONUTF8=1`; a path may be any bytes), an output FILE that is a FIFO nothing reads (`dlq export FILE`, `top "
            "--record FILE`: refused after waiting 5 s for a reader, said once, not waited on for ever), or an "
            "input file that is missing, unreadable, not a regular file "
            "(`/dev/zero`, a FIFO: refused before a byte is read, as `--config` refuses it) or not valid JSON/NDJSON "
            "(the one red line names the file and line; an object naming a key twice is refused too, naming the "
            "key: `ad.json:9: the key \"priority\" appears twice in one object (I-JSON, RFC 7493 §2.3)`, as the API "
            "refuses it; so is an escape `\\ud800` without the other half of its UTF-16 surrogate pair, no character "
            "(RFC 8259 §8.2), naming the escape; so is an ad giving one field under both its names: `ad.json: the field \"targetAudience\" is "
            "given twice, as \"targetAudience\" and as \"target_audience\": give one of the two names` (in NDJSON, "
            "after the first line, that ad is rejected, `ambiguous_field`; a field flag such as `--audience` replaces "
            "the file's field under either name, and so does a file used as the template of `--count N`'s generated "
            "ads: `target_audience` in it replaces their `targetAudience`); every file is read a bounded line at a "
            "time and refused at "
            "its first bad line; an NDJSON file is refused whole when its first line is not JSON, while a later bad "
            "line is that one ad rejected, `invalid_json`, and the others are sent: exit 1)"),
    (UNREACHABLE, "the API (or NATS) could not be reached, or `--api` is not a gamead API (a worker's `/metrics` port, "
                  "nats-server's monitoring or client port: `no gamead API at …`; or its answer is not one: "
                  "JSON of another shape than the route answers — a write's too, which says `it may have been carried "
                  "out` —, JSON nested too deeply, a body longer than `client.max_answer_bytes` (64 MiB; each layer of "
                  "its `Content-Encoding` too), a redirect (never followed), or an answer — its head too — not whole "
                  "within 3 × `client.timeout`; the line names the API, the request and what was wrong); or a request "
                  "went out and "
                  "no answer came (`got the request but gave no answer`: a write may have been carried out, and a "
                  "submit says how to find or settle its ad; a read or a dry run says `a read: nothing was changed`; "
                  "one cut while the request was still being written says `nothing was done`); "
                  "or NATS closed the connection of `gamead worker` or `gamead serve` for good (a server error such "
                  "as `maximum payload violation`: the one line names it)"),
    (NOT_FOUND, "the ad (or DLQ entry, or job: `dlq jobs JOB`, `dlq cancel JOB`) does not exist"),
    (CONFIG, "the configuration is invalid or cannot work (config file, `GAMEAD_*` variable or flag; also a port it "
             "names that a listener cannot bind — `api.port`, `worker.metrics_port`, `embedded.nats_port`, `up --port`: "
             "taken, not ours, or reserved by another running `gamead up` — refused at start; a `--data-dir` "
             "another `gamead up` holds, or that is a file or cannot be created or written, or empty (`--data-dir "
             "\"$UNSET\"`, `GAMEAD_EMBEDDED__DATA_DIR=`; `.` names the working directory on purpose); and NATS "
             "credentials the "
             "server refuses, `Authorization Violation`, at the start of `gamead worker` and `gamead serve`, "
             "or for `nats.refused_exit_after` seconds after they had connected; a `gamead worker --id` a live process "
             "holds: `the id … is held by a live process: host …, pid …, heartbeat … s ago …`; a worker whose id "
             "another process took over while it was frozen, or an API whose registry key another process wrote: "
             "`the id … was taken over by another process …`)"),
    (AD_FAILED, "`submit --wait` finished with the ad failed or dead"),
    (HUNG_UP, "hung up (SIGHUP: a terminal or SSH session closed), handled as Ctrl-C: `gamead submit`'s summary says "
              "what was sent; a command still starting says `interrupted (SIGHUP) while gamead … was starting: "
              "nothing was started` (or `sent`)"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
    (TERMINATED, "terminated (SIGTERM: `timeout`, a CI job cancelled, systemd), handled as Ctrl-C: `gamead "
                 "submit`'s summary says what was sent; a command still starting says `interrupted (SIGTERM) while "
                 "gamead … was starting: nothing was started` (or `sent`)"),
    (READER_GONE, "stdout's reader went away before the output was all written (piped into `head -1`, or `true`): "
                  "128 + SIGPIPE, as a coreutils tool killed by SIGPIPE — a plain pipeline shows the "
                  "reader's status, `set -o pipefail` sees 141 —, whatever the verb; no line, as "
                  "Unix tools say nothing there, unless a write was already done — `submit`, `dlq "
                  "import/replay/purge/cancel`, `scale set/clear`, `doctor --repair` — then one line says what, e.g. "
                  "`the ad WAS queued: id …; do not resend it`, as for a closed stdout"),
)


class OutputFailed(GameadError):
    """The command's output could not be written (stdout, or a FILE it writes: ``ENOSPC``, ``EIO``…): one red line
    naming where, exit :data:`ERROR`. A closed pipe (``| head``) is not this: it ends the command quietly."""

    code = "output_failed"


class Interrupted(GameadError):
    """Ctrl-C that a command answers with more than "interrupted" (``dlq import``: what was imported, what was
    not sent): its one red line, exit :data:`INTERRUPTED`."""

    code = "interrupted"


def exit_code_for(exc: GameadError) -> int:
    """The exit code of a :class:`GameadError` that ends a command. An API that answered 503 ``queue_unavailable``
    could not reach NATS: :data:`UNREACHABLE`, as the README's table says ("the API (or NATS)"), unless the answer
    names an ad that may still be queued (``details.adId``: the request may have done something, so 1)."""
    if isinstance(exc, (ApiUnreachable, NatsUnreachable)) or _nats_away(exc):
        return UNREACHABLE
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, Interrupted):  # 130 for Ctrl-C, 143 / 129 for SIGTERM / SIGHUP raised as one
        from gamead_cli.stops import interrupted_code  # (stops imports this module)

        return interrupted_code()
    if isinstance(exc, ConfigError):
        return CONFIG
    return ERROR


#: the API's code for "NATS is away" (README error table: 503 ``queue_unavailable``)
NATS_AWAY_CODES = frozenset({"queue_unavailable"})


def _nats_away(exc: GameadError) -> bool:
    """True for the API's 503 ``queue_unavailable`` that did nothing (no ``details.adId``)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    return isinstance(exc, ApiClientError) and exc.status == 503 and exc.code in NATS_AWAY_CODES \
        and "adId" not in details
