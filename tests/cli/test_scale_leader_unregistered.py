"""Drill attack31b F2: an `autoscaler` lease held by `api-deadnode-999` (gone, `expiresAt` an hour ahead) was shown
by `gamead scale status` as `leader api-deadnode-999 (since …)` with no word that no such node runs. The leader row
says so now (`/v1/scale` `leader.registered` false), and says nothing of the kind for a registered leader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease
from tests.support import Proc, start_api, wait_for

pytestmark = pytest.mark.usefixtures("isolated_env")


async def _hold(url: str, holder: str) -> None:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(names.LEASES_BUCKET)
        t = time.time()
        await kv.put("autoscaler", Lease(holder, t - 100, t - 1, t + 3600).to_json())
    finally:
        await nc.close()


def test_scale_status_says_when_the_leader_is_not_a_registered_node(
        runner: CliRunner, fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    server = fresh_nats()
    proc, url = start_api(server.url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="local")  # never leads: shows the state
    procs.append(proc)
    api_id = wait_for(lambda: next((n["id"] for n in httpx.get(f"{url}/v1/workers", timeout=5).json()["items"]
                                    if n["role"] == "api"), None), timeout=20, what="the API's registry entry")
    asyncio.run(_hold(server.url, "api-deadnode-999"))
    doc = json.loads(runner.invoke(app, ["scale", "status", "-o", "json", "--api", url]).stdout)
    assert doc["leader"]["id"] == "api-deadnode-999" and doc["leader"]["registered"] is False, doc["leader"]
    table = runner.invoke(app, ["scale", "status", "--api", url])
    assert table.exit_code == 0, table.output
    said = " ".join(table.stdout.split())  # the row may wrap
    assert "leader api-deadnode-999 (since" in said and "(not a registered node: it may be gone;" in said, said
    assert "gamead doctor --repair releases it" in said

    asyncio.run(_hold(server.url, api_id))  # a registered holder: no such word
    doc = json.loads(runner.invoke(app, ["scale", "status", "-o", "json", "--api", url]).stdout)
    assert doc["leader"]["id"] == api_id and doc["leader"]["registered"] is True, doc["leader"]
    said = " ".join(runner.invoke(app, ["scale", "status", "--api", url]).stdout.split())
    assert f"leader {api_id} (since" in said and "registered" not in said, said
