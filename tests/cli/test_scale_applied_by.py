"""attack44c F5: ``gamead scale set N -o json`` against an API node whose autoscaler does not lead (a ``gamead serve``
sharing a ``gamead up``'s NATS, the API of a second stack) printed ``"note": null`` where the table said who applies
the override (another stack's autoscaler, no autoscaler at all, a leader whose last call failed). Now ``appliedBy``
(``GET /v1/scale``, and ``POST``/``DELETE /v1/scale/override``'s answers) carries the same facts under stable names
(``by``, ``leader``, ``leaderIsThisNode``, ``failed``, ``error``) and the sentence the table prints (``text``), for
``scale status``, ``set`` and ``clear``; the table says whether the leader is the node that answered. Real
nats-server and ``gamead serve`` (backend ``local``: it never leads); the lease and the leader's state are written
as a ``gamead up`` writes them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease
from gamead_core.scaling.store import ScaleStore
from tests.support import Proc, start_api

pytestmark = pytest.mark.usefixtures("isolated_env")

HOLDER = "up-otherhost-4242"  #: a gamead up on another host: never the API answering


async def _lead(url: str, stack: str | None, error: str | None = None) -> None:
    """The lease (``stack``: the leader's, None: a lease that names none) and the state a ``gamead up`` leader
    writes (``error``: its last scale call's failure)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        t = time.time()
        await (await js.key_value(names.LEASES_BUCKET)).put(
            "autoscaler", Lease(HOLDER, t - 100, t - 1, t + 3600, stack=stack).to_json())
        await ScaleStore(js, replicas=1).put_state({"backend": "local", "leader": HOLDER, "t": t, "current": 1,
                                                   "desired": 2 if error else 1, "error": error, "minReplicas": 1,
                                                   "maxReplicas": 4, "intervalSeconds": 5.0, "decisions": []})
    finally:
        await nc.close()


def _verbs(runner: CliRunner, url: str) -> dict[str, Any]:
    """Each verb's ``-o json`` and table: status, set, clear (of the override just set)."""
    said: dict[str, Any] = {}
    for verb, argv in (("status", ["scale", "status"]), ("set", ["scale", "set", "3", "--for", "1m"]),
                       ("clear", ["scale", "clear"])):
        for output in ("json", "table"):
            if verb == "clear":
                runner.invoke(app, ["scale", "set", "3", "--for", "1m", "--api", url])  # something to clear
            run = runner.invoke(app, [*argv, "-o", output, "--api", url])
            assert run.exit_code == 0, (argv, run.output)
            said[f"{verb} {output}"] = json.loads(run.stdout) if output == "json" else " ".join(run.stdout.split())
    return said


def _tells(said: dict[str, Any], by: str, here: bool | None) -> dict[str, Any]:
    """The three verbs' JSON carry one ``appliedBy`` of ``by``, whose ``text`` ``set`` and ``clear`` print."""
    applied = said["status json"]["appliedBy"]
    assert applied["by"] == by and applied["leaderIsThisNode"] is here, applied
    for verb in ("set", "clear"):
        doc = said[f"{verb} json"]
        assert doc["appliedBy"] == doc["status"]["appliedBy"] == applied, (verb, doc["appliedBy"], applied)
        assert " ".join(applied["text"].split()) in said[f"{verb} table"], (verb, said[f"{verb} table"])
    return applied  # type: ignore[no-any-return]


def test_every_scale_verb_says_in_json_who_applies_the_override(
        runner: CliRunner, fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    server = fresh_nats()
    proc, url = start_api(server.url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="local",  # never leads: a follower
                          GAMEAD_EMBEDDED__DATA_DIR=str(tmp_path / "b"))
    procs.append(proc)

    none = _tells(_verbs(runner, url), "no_leader", None)
    assert none["leader"] is None and none["text"].startswith("no autoscaler holds the lease now"), none

    asyncio.run(_lead(server.url, "/srv/a/.gamead"))  # another stack's gamead up leads this NATS
    other = _tells(_verbs(runner, url), "another_stack", False)
    assert other["leader"] == HOLDER and "another stack's autoscaler (gamead up pid 4242" in other["text"], other

    asyncio.run(_lead(server.url, None))  # a leader of no known stack: this node only answers for it
    said = _verbs(runner, url)
    leader = _tells(said, "leader", False)
    assert leader["text"] == ("applied by the autoscaler's leader (gamead up pid 4242 on host otherhost; not this API "
                              "node, which only answers for it) at its next decision"), leader
    assert said["set json"]["note"] is None  # the clamp's note: nothing clamped

    asyncio.run(_lead(server.url, None, error="forbidden to patch deployments/scale"))
    said = _verbs(runner, url)
    failing = _tells(said, "leader_failing", False)
    assert (failing["failed"], failing["error"]) == ("scale_call", "forbidden to patch deployments/scale"), failing
    assert f"scale status --api {url})" in said["set table"]  # the command to follow it, beside the sentence
