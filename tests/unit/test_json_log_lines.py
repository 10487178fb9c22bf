"""A JSON log line carries no terminal colouring (reviewer V8: uvicorn's ``color_message`` extra, the message
again with ANSI escapes, leaked into every ``gamead serve`` JSON line). A real uvicorn server on a free loopback
port logs through ``gamead_core.logs``; no NATS needed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import uvicorn

from gamead_core.logs import strip_ansi
from tests.support import json_log_lines, wait_for


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    with json_log_lines("api") as out:
        yield out


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def _app(scope: dict, receive: object, send: object) -> None:  # a minimal ASGI app: uvicorn's lines only
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            kind = message["type"].replace(".startup", ".startup.complete").replace(".shutdown", ".shutdown.complete")
            await send({"type": kind})  # type: ignore[operator]
            if message["type"] == "lifespan.shutdown":
                return


def test_uvicorns_lines_carry_no_color_message(lines: io.StringIO) -> None:
    # port 0: the kernel's pick, bound by uvicorn at once (before, a port bound here, let go, and bound again by
    # uvicorn later: another process's meanwhile, now and then)
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn started")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    records = _records(lines)
    started = [r for r in records if str(r.get("message", "")).startswith("Uvicorn running on")]
    assert started, records  # uvicorn logs this line with a color_message extra
    for record in records:
        assert "color_message" not in record, record
        assert "\x1b" not in json.dumps(record, ensure_ascii=False), record
        assert record["role"] == "api" and record["level"] in ("INFO", "WARNING")


def test_ansi_escapes_leave_every_string_field(lines: io.StringIO) -> None:
    logging.getLogger("gamead_core.test").warning("\x1b[31mred\x1b[0m done",
                                                  extra={"color_message": "\x1b[1mx\x1b[0m", "detail": "\x1b[2Kok"})
    (record,) = _records(lines)
    assert record["message"] == "red done" and record["detail"] == "ok"
    assert "color_message" not in record


def test_strip_ansi_keeps_plain_text() -> None:
    assert strip_ansi("plain [not markup] text") == "plain [not markup] text"
    assert strip_ansi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[38;5;208mok\x1b[0m") == "link ok"


def test_ts_is_utc_to_the_millisecond_whatever_the_host_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """attack39b F14: ``TZ=Pacific/Apia gamead serve`` wrote ``"ts": "2026-12-05T14:09:35+1300"`` at 01:09:35 UTC:
    nodes in different zones sorted wrongly as text, and whole seconds could not order an ad's API and worker lines.
    Now UTC, ``Z``, to the millisecond, as every other time gamead writes; text lines too."""
    monkeypatch.setenv("TZ", "Pacific/Apia")
    time.tzset()
    try:
        with json_log_lines("api") as out:
            before = time.time()
            logging.getLogger("gamead_core.test").warning("hello")
        (record,) = _records(out)
        stamp = record["ts"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        assert before - 0.002 <= at <= time.time()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
