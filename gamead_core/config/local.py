"""Sections for one machine and the CLI: ``embedded:`` (the nats-server of ``gamead up``), ``log:`` and
``client:`` (how the CLI reaches the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from gamead_core.config.addresses import control_problem, unresolvable
from gamead_core.config.placeholders import refuse_placeholder
from gamead_core.config.section import HOUR, MINUTES_10, PositiveSeconds, Seconds, Section


class EmbeddedSettings(Section):
    """``embedded:`` – the nats-server ``gamead up`` starts: data directory, port (0: a free one), fsync, and
    the cores its Go runtime may run on at once (``GOMAXPROCS``; :func:`gamead_core.go_runtime.go_max_procs`);
    and the longest back-off before ``gamead up`` restarts a child that died or was refused again
    (:func:`gamead_core.supervisor.restart_delay`)."""

    data_dir: Path = Field(Path(".gamead"), description="Where `gamead up` keeps NATS data and logs.")
    nats_port: int = Field(
        0, ge=0, le=65535, description="Port of the embedded nats-server (0 = free port). At most 65535.")
    nats_monitor_port: int = Field(
        0, ge=0, le=65535, description="Loopback port of the embedded nats-server's HTTP monitoring (`/healthz`, "
        "which `gamead up` watches; 0 = a free port, reserved like the others). At most 65535.")
    sync_always: bool = Field(False, description="fsync before every ack (survives power loss; ~10x slower).")
    tty_check: bool = Field(
        True, description="`gamead up` stops the stack, as on SIGHUP, once the terminal on its stdin hangs up (flag "
        "--tty-check/--no-tty-check); false: the stack outlives the terminal, as with stdin not a terminal.")
    gomaxprocs: int = Field(
        0, ge=0, le=1024,
        description="GOMAXPROCS of the embedded nats-server: cores its Go runtime runs on at once. 0 = a "
                    "GOMAXPROCS in the environment, else half the usable cores (CPU affinity and a container's "
                    "CPU limit; at least 1): it shares them with the API and the workers. At most 1024.")
    restart_backoff_cap: Seconds = Field(
        30.0, ge=0.5, le=HOUR,
        description="Most seconds `gamead up` waits before restarting a child (nats-server, the API, a worker) "
                    "that died or was refused again: at once after a first death in a row, 0.5 s after a second, "
                    "doubled at each one up to this; at least 0.5 s (the first back-off). At most 1 hour (3600 s).")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        """An empty ``data_dir`` (``--data-dir "$UNSET"``, ``GAMEAD_EMBEDDED__DATA_DIR=``) is refused: read as a
        path it is the working directory, where ``gamead up`` wrote its store, logs and ``nats.conf`` among the
        operator's files (attack46 F9). ``.`` says so on purpose and stays allowed."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: name a directory (default ./.gamead), or . for the working directory")
        # leftout59: a line break in it split each line gamead up printed of it (a path, not pasteable) and its
        # nats.conf line: refused as a URL's is, named
        if isinstance(value, (str, Path)) and (problem := control_problem(str(value), "a data directory")):
            raise ValueError(problem)
        return value


class LogSettings(Section):
    """``log:`` – level and format (JSON lines with ids as fields, or text)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = Field("json", description="json = one JSON object per line.")


class ClientSettings(Section):
    """``client:`` – how the CLI talks to the API: URL, bearer token, the timeout of one answer and the time
    it may spend sending a request again (seconds; see ``gamead_cli.retry``), the time a bulk submit spends
    looking up its "may be queued" ads (``gamead_cli.submit.settling``), and the longest answer it reads."""

    api_url: str = Field("http://127.0.0.1:8080", description="API the CLI talks to (env GAMEAD_API_URL).")
    token: SecretStr | None = Field(None, description="API token the CLI sends (env GAMEAD_TOKEN).")
    timeout: PositiveSeconds = Field(
        10.0, le=HOUR, description="Seconds the CLI waits for one answer of the API. At most 1 hour (3600 s).")
    list_timeout: PositiveSeconds = Field(
        120.0, le=HOUR,
        description="Seconds `gamead ads list` waits for one page (or `timeout`, if longer): GET /ads reads up to "
                    "api.list_scan_limit records for it, which can take longer than one answer's `timeout` on a large "
                    "or busy bucket; a stalled read answers 503 scan_incomplete on its own. At most 1 hour (3600 s).")
    retry_for: Seconds = Field(
        10.0, ge=0, le=600,
        description="Seconds the CLI may spend sending one request again after a 429, a 503 or a lost "
                    "connection, where that is safe (gamead_cli.retry; a 429: 6 times this, after the command's last "
                    "request the rate limit let through: gamead_cli.pacing); 0 never retries. At most 600 s.")
    lookup_for: PositiveSeconds = Field(
        30.0, le=MINUTES_10,
        description="Seconds a bulk `gamead submit` spends at most looking up the ads whose publish got no answer "
                    "(GET /ads/ID, before its summary; gamead_cli.submit.settling): none starts after, each GET's "
                    "retries and timeout are cut to the time left. At most 600 s (10 min).")
    max_answer_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, le=4 * 1024**3,
        description="Longest answer of the API the CLI reads (bytes, decoded; a 500-ad `GET /ads` page is ~3.3 MB): "
                    "one longer is cut there, exit 3 (gamead_cli.answers). Each answer must also be whole within 3 × "
                    "`timeout`. At least 1 MiB, at most 4 GiB.")

    @field_validator("api_url")
    @classmethod
    def _api_url_is_http(cls, value: str) -> str:
        """A URL the CLI can send requests to (:func:`api_url_problem`), without the spaces around it: the check
        reads it so, and httpx took ``' http://…'`` as a path (every request: exit 1, "missing an 'http://'")."""
        if (problem := api_url_problem(value)) is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("token")
    @classmethod
    def _token_fits_a_header(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """An HTTP header carries printable ASCII only (RFC 9110 §5.5; RFC 6750's b64token is a subset); nor is it
        the template's placeholder (attack39b F2: gamead_core.config.placeholders)."""
        if value is not None and not all(33 <= ord(c) <= 126 for c in value.get_secret_value()):
            raise ValueError(
                "must be printable ASCII without spaces: it is sent as an HTTP Bearer token (GAMEAD_TOKEN)")
        return refuse_placeholder(value, info)



def api_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as the API's address, or None: it must be ``http://`` or ``https://`` with a
    host (and a port, if any, from 0 to 65535), and no query or fragment: it is a base each request's path is
    added to, and httpx sent ``GET /ads?limit=5`` under ``http://h:8080/?x=1`` as ``GET /?limit=5``. The one
    rule of ``--api``, ``GAMEAD_API_URL``, ``client.api_url`` and the ``apiUrl`` of a running stack's
    ``gamead-up.json``. A control character anywhere (C0, DEL, C1: a URL cut from a TSV file keeps its tab) or a host
    the HTTP client cannot read (IDNA) is refused here too, named as an escape, not by the first request (attack32a
    F3: it was exit 1 ``api_error``). Pure."""
    if (problem := control_problem(url)) is not None:
        return f"{url[:80]!r}: {problem}"
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"{url[:80]!r} is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{url[:80]!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:8080)"
    if not parts.hostname:
        return f"{url[:80]!r} names no host (e.g. http://127.0.0.1:8080)"
    if (problem := unresolvable(parts.hostname)) is not None:
        return f"{url[:80]!r}: {problem}"
    if parts.query or parts.fragment or url.strip().endswith(("?", "#")):
        return (f"{url[:80]!r} has a query (?…) or a fragment (#…): the API's address is a base URL that each "
                "request's path is added to (e.g. http://127.0.0.1:8080)")
    return _client_problem(url)


def _client_problem(url: str) -> str | None:
    """What keeps the CLI's HTTP client (httpx) from taking ``url`` as its base URL, as
    :class:`gamead_cli.client.ApiClient` gives it (``/`` stripped at the end), or None. Pure."""
    import httpx  # deferred: a server process reading its config does not need it

    try:
        httpx.URL(url.rstrip("/"))
    except (httpx.InvalidURL, ValueError) as exc:
        return f"{url[:80]!r} is not a URL the client can send to ({exc})"
    return None
