"""Options shared by many commands, defined once, and the settings they feed."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # imported on use: `gamead --help` must not load pydantic or httpx
    from gamead_cli.client import ApiClient
    from gamead_core.config import GameadSettings


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: $GAMEAD_CONFIG, else ./config.yaml if present).",
        envvar="GAMEAD_CONFIG",
        show_envvar=False,
    ),
]
OutputOpt = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json for scripts.", case_sensitive=False),
]


def api_url_arg(value: str | None) -> str | None:
    """``--api URL``, checked by the rule of ``client.api_url`` (:func:`gamead_core.config.local.api_url_problem`)
    while the flags are read: ``--api notaurl`` or ``ftp://x`` is bad usage (exit 2, the line names ``--api``),
    never a request. Returns it without the spaces around it (a pasted ``' http://…'``)."""
    if value is None:
        return None
    from gamead_core.config.local import api_url_problem

    if (problem := api_url_problem(value)) is not None:
        raise typer.BadParameter(problem)
    return value.strip()


ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="URL of the gamead API \\[env GAMEAD_API_URL, config client.api_url; default: the API of the gamead up "
             "running on ./.gamead or the nearest parent directory's (embedded.data_dir), else "
             "http://127.0.0.1:8080].",
        show_default=False,
        callback=api_url_arg,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
#: what is in force when no config file is: said so by ``gamead up``'s config line and ``gamead config path``
NO_CONFIG_FILE = "no config file (defaults, GAMEAD_* and flags)"


def config_named(path: Path | None, none: str = NO_CONFIG_FILE) -> str:
    """``config file /abs/config.yaml``: the config file in force (``path`` as found: made absolute, for a line
    read in any terminal); ``none`` when there is none. Pure but for the working directory."""
    import os

    return f"config file {os.path.abspath(path)}" if path is not None else none


def api_named(url: str) -> str:
    """``API http://127.0.0.1:8080``: the API a command talks to, as every confirmation prompt and ``gamead
    doctor``'s header name it (a password in the URL shown as ``***``), so a ``GAMEAD_API_URL`` pointing at the
    wrong stack shows on screen before anything is done. Pure."""
    from gamead_core.redact import redact_url

    return f"API {redact_url(url)}"


def confirm(question: str, yes: bool, *, api: str) -> None:
    """Ask ``question`` on the terminal (default no) unless ``--yes`` was given, after the API it acts on
    (``api``: its URL; ``API http://127.0.0.1:8080 · Purge 3 dead-lettered ad(s)? …``, :func:`api_named`).

    Raises ``typer.BadParameter`` (bad usage, exit 2: the README's table) without ``--yes`` when stdin is no
    terminal (a script must say it), and ``typer.Exit(1)`` when the operator answers no.
    """
    if yes:
        return
    import sys

    question = f"{api_named(api)} · {question}"

    from gamead_cli import exitcodes

    if not sys.stdin.isatty():  # no parameter named: the message says which flag is missing
        raise typer.BadParameter(f"{question.rstrip('?')}: refusing without --yes (no terminal to ask)")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(exitcodes.ERROR)


def settings_from(config: Path | None, **overrides: Any) -> GameadSettings:
    """Load settings for a command: its flags (``overrides``, nested dicts) win over everything else.

    Raises :class:`~gamead_core.errors.ConfigError` (exit 5) for a bad file or ``GAMEAD_*`` value; a usage error
    (exit 2) naming the flag for a flag's value its setting refuses (:func:`gamead_cli.flag_settings.check_flags`).
    """
    from gamead_cli.flag_settings import check_flags
    from gamead_core.config import load_settings

    check_flags(overrides)
    return load_settings(config, **overrides)


def client_settings_from(config: Path | None, api: str | None, *, talks: bool = True) -> GameadSettings:
    """The settings of a client command (``--config``, ``--api``): ``client.api_url`` is ``--api``, else
    GAMEAD_API_URL (or GAMEAD_CLIENT__API_URL), else the config file's ``client.api_url``, else the API of the
    ``gamead up`` of ``embedded.data_dir`` (``./.gamead``, else that of the nearest parent directory:
    :func:`gamead_core.datadir_find.stack_data_dir`; its ``gamead-up.json``,
    :func:`gamead_core.datadir.recorded_stack`; also a stack stopped since, whose API it then finds down), else
    ``http://127.0.0.1:8080``. So a verb run in a stack's directory talks to that stack, never silently to another
    one on 8080 (attack41b F5: a stopped stack's directory fell back to 8080). When none of these chose it and the
    command ``talks`` to the API (every verb but ``config show``), one dim line on stderr says the URL is the
    built-in default, whichever process holds that port, before the first request goes out (a refusal of the
    input before that is its one red line alone), and so does the red line if it cannot be reached
    (:func:`gamead_cli.api_errors.from_default`; whichapi43, after attack43a F3: ``ads list`` run where no stack is
    showed another stack's table as this directory's)."""
    from gamead_core.config.local import api_url_problem
    from gamead_core.datadir import STATE_FILE, recorded_stack
    from gamead_core.datadir_find import stack_data_dir
    from gamead_core.errors import ConfigError

    from gamead_cli.api_errors import from_default, unsaid_forgotten

    unsaid_forgotten()
    settings = settings_from(config, client={"api_url": api})
    if "api_url" in settings.client.model_fields_set:
        return settings
    # stopped too: never another stack on 8080 (a41b F5); from a subdirectory too, as git finds .git (left42)
    stack = recorded_stack(stack_data_dir(settings.embedded))
    if stack is None or stack.api_url is None:  # the built-in default: said once, before the first request
        if talks:
            from_default(settings.client.api_url, api_named(settings.client.api_url))
        return settings
    # the one rule of every source (exit 5), and only the loopback http URL that up writes (a41c F1)
    if (problem := api_url_problem(stack.api_url) or not_up_url(stack.api_url)) is not None:
        raise ConfigError(f"the apiUrl of {stack.data_dir / STATE_FILE} (the gamead up "
                          f"{'running' if stack.running else 'that ran'} there): {problem} — set --api or "
                          "GAMEAD_API_URL")
    settings.client = settings.client.model_copy(update={"api_url": stack.api_url})
    if not stack.running:  # its API is most likely down: the error will name this file (api_errors)
        from gamead_cli.api_errors import from_stopped_stack
        from_stopped_stack(settings.client.api_url, str(stack.data_dir / STATE_FILE))
    return settings


def not_up_url(url: str) -> str | None:
    """Why ``url``, the ``apiUrl`` of a ``gamead-up.json``, is not one ``gamead up`` writes, or None: up writes
    ``http://127.0.0.1:PORT`` (its API listens on loopback alone), so any other is not its and is never used
    unasked: a planted file's ``https://attacker.example`` got every verb run in that directory's bearer token
    (GAMEAD_CLIENT__TOKEN) in its ``Authorization`` header (attack41c F1). Pure."""
    from urllib.parse import urlsplit

    from gamead_core.api.auth import is_loopback

    parts = urlsplit(url.strip())
    if parts.scheme.lower() == "http" and is_loopback(parts.hostname or "") and not parts.username \
            and parts.password is None:
        return None
    return (f"{url[:80]!r} is not the http://127.0.0.1:PORT URL gamead up writes there (its API listens on "
            "loopback alone), so no token is sent to it unasked")


def api_client(config: Path | None, api: str | None) -> ApiClient:
    """The API client of a client command: ``--api`` wins over GAMEAD_API_URL, the config file and the local
    stack (:func:`client_settings_from`). Its ``again`` is :func:`reach_again` of the same flags and the API it
    reaches, for the commands it prints next."""
    from gamead_cli.client import ApiClient

    client = ApiClient.from_settings(client_settings_from(config, api).client)
    client.again = reach_again(api, config, client.api_url)
    return client


def reach_again(api: str | None, config: Path | None, reached: str | None = None) -> str:
    """The context flags a command printed as the next step needs to reach the same API with the same
    configuration, pasted into another terminal in another directory (where neither GAMEAD_API_URL nor this
    directory's ``./config.yaml`` or ``./.gamead`` stack is found): `` --api URL`` of ``api`` as given, else of
    ``reached`` (the API this command talks to, however it was found; left out when it holds a password this
    command was not given on its command line), then `` --config PATH`` (absolute) of the config file in force
    (``--config``, GAMEAD_CONFIG or ``./config.yaml``), if any. Values shell-quoted. ``""`` when there is
    neither. Never a password: one in ``api`` is printed as ``***`` (:func:`~gamead_core.redact.redact_url`),
    and a note after the flags says it was left out."""
    import os
    import shlex
    from urllib.parse import urlsplit

    from gamead_core.config import config_path
    from gamead_core.redact import redact_url

    url = api
    if url is None and reached and not urlsplit(reached).password:
        url = reached
    shown = redact_url(url)
    found = config_path(config)
    return ((f" --api {shlex.quote(shown)}" if shown else "")
            + (f" --config {shlex.quote(os.path.abspath(found))}" if found is not None else "")
            + (" (the password of --api was left out: *** stands for it)" if shown != url else ""))


def duration_seconds(text: str | None) -> float | None:
    """A duration as :func:`gamead_core.durations.parse_duration` reads it (``90``, ``30s``, ``2h30m``, ``1d4h``,
    ``1.5h``…) → seconds; None if it is not one. Pure."""
    from gamead_core.durations import parse_duration

    try:
        return parse_duration(text or "")
    except ValueError:
        return None


def duration_between(low: float, high: float, *, zero: bool = False) -> Any:
    """A Typer ``callback`` for an option in seconds (declared ``str``, metavar ``DURATION``): its text read by
    :func:`gamead_core.durations.parse_duration` (``90``, ``1.5``, ``30s``, ``2m30s``…), then bounded to
    ``[low, high]`` (``0`` too when ``zero``): ``--refresh must be 0.2s to 1m, not 0`` (:mod:`gamead_cli.bounds`,
    exit 2). A text that is no duration is one ``Invalid value`` usage error (exit 2) naming the forms read."""
    from gamead_core.bound_text import Range
    from gamead_core.durations import parse_duration

    from gamead_cli.bounds import checked

    def check(value: str | float | None) -> float | None:
        if value is None:
            return None
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        return checked(seconds, Range(low, high, or_zero=zero, seconds=True), str(value))

    return check


def bounded_float(low: float, high: float, *, zero: bool = False) -> Any:
    """A Typer ``callback`` for a number option (a float; an int too: :func:`sequence_between`): refuses ``inf``,
    ``nan`` and anything outside ``[low, high]``
    (``0`` too when ``zero``: "0 = off / as fast as possible") at parse time, in the one sentence of a number
    out of range (``--rate must be 0.001 to 100,000, not 0``: :mod:`gamead_cli.bounds`, exit 2). The bounds are
    those the command can act on: past them a sleep, a deadline or an ``int()`` of the value overflows
    (``OverflowError``) or the API refuses the number. Click's own ``min``/``max`` let ``inf`` and ``nan``
    through (nan compares false), hence this."""
    from gamead_core.bound_text import Range

    from gamead_cli.bounds import checked

    def check(value: float | None) -> float | None:
        return None if value is None else checked(value, Range(low, high, or_zero=zero))

    return check


def sequence_between(low: int, high: int) -> Any:
    """A Typer ``callback`` for a stream-sequence option (``--cursor``, ``--until-seq``, metavar ``SEQ``): refuses a
    value outside ``[low, high]`` as Typer's ``min``/``max`` did (``--cursor must be 0 to 9,223,…, not -1``, exit 2),
    without their ``[0<=x<=9223372036854775807]`` in the help (newcomer49: noise beside ``SEQ``). The check of
    :func:`bounded_float` (Click names the option of a refusal raised in its callback)."""
    return bounded_float(low, high)


#: ``gamead serve`` and ``gamead worker``: how long to wait for NATS at start before exit 3 (0: keep trying)
GiveUpAfterOpt = Annotated[
    str | None,
    typer.Option("--give-up-after", callback=duration_between(0, 7 * 86400), metavar="DURATION",
                 help="How long to wait for NATS at start (seconds, or 30s, 2m…), then exit 3; 0 = keep trying "
                      "\\[nats.give_up_after, default 0].", show_default=False),
]


#: longest ``--timeout`` of ``--wait`` (seconds)
MAX_WAIT_SECONDS = 7 * 86400

#: ``submit --wait`` and ``ads get --wait``: how long to wait for the analysis
WaitTimeoutOpt = Annotated[
    str, typer.Option("--timeout", callback=duration_between(0, MAX_WAIT_SECONDS), metavar="DURATION",
                      help="How long --wait waits before giving up: seconds, or 90s, 10m, 1h30m (at most 7d).")
]


def ad_id_arg(value: str | None, hint: str = "ID") -> str | None:
    """An ad id given on the command line, checked here as the API checks it (:mod:`gamead_core.ids`): a
    malformed one (``a.b``, ``""``, 10 KB) is bad usage, exit 2, ``'a.b' is not an ad id (…)``, never a request.
    Returns the id in lowercase, the one form gamead uses (a ULID is case-insensitive: ``01M8RVR…`` is taken)."""
    from gamead_core.ids import AD_ID_RULE, is_ad_id, normal_id

    if value is None:
        return None
    value = normal_id(value)
    if not is_ad_id(value):
        raise typer.BadParameter(f"{value[:40]!r} is not an ad id ({AD_ID_RULE})", param_hint=hint)
    return value


def job_id_arg(value: str | None, hint: str = "JOB") -> str | None:
    """A job id given on the command line: as :func:`ad_id_arg`, with :data:`gamead_core.ids.JOB_ID_RULE`."""
    from gamead_core.ids import JOB_ID_RULE, is_job_id, normal_id

    if value is None:
        return None
    value = normal_id(value)
    if not is_job_id(value):
        raise typer.BadParameter(f"{value[:40]!r} is not a job id ({JOB_ID_RULE})", param_hint=hint)
    return value


def cursor_arg(value: str | None, hint: str = "--cursor") -> str | None:
    """A ``GET /ads`` page cursor given on the command line, checked as the API checks it
    (:func:`gamead_core.ids.is_ad_cursor`): a malformed one is bad usage, exit 2, one line, never a request."""
    from gamead_core.ids import AD_CURSOR_RULE, is_ad_cursor

    if value is not None and not is_ad_cursor(value.lower()):  # its ad id's capitals: the same id (attack45 F10)
        raise typer.BadParameter(f"{value[:60]!r} is not a page cursor ({AD_CURSOR_RULE})", param_hint=hint)
    return None if value is None else value.lower()  # refused as given: ESC [2J was quoted '\x1b[2j' (attack47 F9)
