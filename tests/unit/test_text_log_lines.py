"""attack39a F4: with ``log.format: text`` a caller without a valid token forged whole log lines through the request
path its refusal line names (``/v1/x%0a2026-12-05 01:20:00 INFO gamead.audit audit purge accepted by op2``: a line
claiming a purge that never happened) and sent raw terminal escapes (``%0d%0aFORGED-LINE%1b%5b2J``: a carriage
return and a clear-screen). The API app in process (no NATS needed: the gate refuses before any route), its 401 and
403 lines read back from gamead's text logging."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings, LogSettings
from gamead_core.logs import setup_logging

TOKENS = [{"name": "view", "token": "v" * 32, "role": "viewer"}]


@contextmanager
def text_log_lines() -> Iterator[io.StringIO]:
    out, root = io.StringIO(), logging.getLogger()
    saved, level = list(root.handlers), root.level
    setup_logging(LogSettings(format="text", level="INFO"), role="api", stream=out)
    try:
        yield out
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_a_refused_path_cannot_forge_a_line_or_reach_the_terminal() -> None:
    """Figure before: 4 lines for the 2 refusals (one a forged ``INFO gamead.audit … accepted by op2``), one with a
    raw CR and ``ESC[2J``. Now one line each, the path's controls escaped (``\\n``, ``\\r``, ``\\u001b``)."""
    app = create_app(GameadSettings(auth={"tokens": TOKENS}, ratelimit={"enabled": False}), "nats://127.0.0.1:1")

    async def send() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
            forged = await client.get("/v1/x%0a2026-12-05%2001:20:00%20INFO%20gamead.audit%20audit%20purge%20"
                                      "accepted%20by%20op2", headers={"Authorization": "Bearer nope-" + "a" * 20})
            escape = await client.post("/v1/y%0d%0aFORGED-LINE%1b%5b2J", json={},
                                       headers={"Authorization": f"Bearer {'v' * 32}"})
            return [forged.status_code, escape.status_code]

    with text_log_lines() as out:
        assert asyncio.run(send()) == [401, 403]
    lines = [line for line in out.getvalue().splitlines() if " httpx: " not in line  # the test client's own
             and ("refused:" in line or "FORGED" in line or "purge accepted" in line)]
    assert len(lines) == 2, lines
    assert all(line.split(" ", 2)[1] == "api" for line in lines), lines  # each begins as gamead's own lines do
    assert "\\n2026-12-05 01:20:00 INFO gamead.audit" in lines[0] and "\\r\\nFORGED-LINE\\u001b[2J" in lines[1]
    assert not any(ch in out.getvalue() for ch in "\r\x1b")
