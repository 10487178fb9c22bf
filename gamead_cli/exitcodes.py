"""Exit codes of the ``gamead`` command. Scripts may rely on them.

:data:`TABLE` is the one list of them; the README's exit-code table is checked against it by a test.
The root group (``gamead_cli.root``) maps every failure to one of these; commands never call
``sys.exit`` with a number of their own.
"""

from __future__ import annotations

from gamead_core.errors import ApiClientError, ApiUnreachable, ConfigError, GameadError, NatsUnreachable, NotFound

OK = 0
ERROR = 1  #: the request failed, or any unexpected error (the message says why)
USAGE = 2  #: bad usage: flags, arguments, an input file missing or not JSON (Click's own code; not --config's: 5)
UNREACHABLE = 3  #: the API (or NATS) could not be reached, or the URL is not a gamead API
NOT_FOUND = 4  #: the named ad / entry / job does not exist, or a worker quiet / resume was for was not done
CONFIG = 5  #: the configuration is invalid (config file, missing too, or GAMEAD_* variable)
AD_FAILED = 6  #: ``submit --wait`` (or ``ads get --wait``) ended with the ad failed or dead
INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT, the shell convention)
HUNG_UP = 129  #: SIGHUP (128 + 1), handled as Ctrl-C (:mod:`gamead_cli.stops`, :mod:`gamead_cli.first_signals`)
TERMINATED = 143  #: SIGTERM (128 + 15), handled as Ctrl-C (:mod:`gamead_cli.stops`, :mod:`gamead_cli.first_signals`)
#: stdout's reader went away (``| head -1``): 128 + SIGPIPE, what a coreutils tool's death by SIGPIPE shows a shell
#: (``set -o pipefail`` sees it; a plain pipeline shows the reader's own status). left39b: it was 1, as a failure
READER_GONE = 141

#: (code, meaning) in the order the README shows them.
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (ERROR, "the request failed, its output could not be written, or an unexpected error (the message says why; "
            "`--debug` shows the traceback)"),
    (USAGE, "bad usage: flags, arguments, an output FIFO nothing reads, or an input file that is missing, "
            "unreadable, not a regular file or not valid JSON/NDJSON"),
    (UNREACHABLE, "the API (or NATS) could not be reached, `--api` is not a gamead API (or its answer is not one), a "
                  "request got no answer, or NATS closed a node's connection for good"),
    (NOT_FOUND, "the ad (or DLQ entry, or job: `dlq jobs JOB`, `dlq cancel JOB`) does not exist, or `workers "
                "quiet` / `resume` was not done for a worker it was for (a partial success)"),
    (CONFIG, "the configuration is invalid or cannot work: config file or `GAMEAD_*` variable, a port or data dir "
             "it cannot use, NATS credentials refused, a worker id held"),
    (AD_FAILED, "`submit --wait` (or `ads get --wait`) finished with the ad failed or dead"),
    (HUNG_UP, "hung up (SIGHUP: a terminal or SSH session closed), handled as Ctrl-C"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
    (TERMINATED, "terminated (SIGTERM: `timeout`, a CI job cancelled, systemd), handled as Ctrl-C"),
    (READER_GONE, "stdout's reader went away before the output was all written (piped into `head -1`, or `true`): "
                  "128 + SIGPIPE, whatever the verb"),
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
