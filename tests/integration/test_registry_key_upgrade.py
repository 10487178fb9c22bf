"""review42 F1: review41 F9 made ``node_key`` one to one, which changed the registry key of every node id with a
character outside ``[-.a-zA-Z0-9]`` (``worker_1`` was key ``worker_1``, now ``worker=5f1``; ``api-my_host-7``, the
id an API on host ``my_host`` takes, now ``api-my=5fhost-7``). In a rolling deploy half the fleet reads and deletes
under the earlier key: a newer reaper looked up an older API's clean stop under the new key, found no delete mark
(and no stop note: an older gamead writes none) and took it for a death (its backlog queued again, a false
"died" line); an older reaper did the same with a newer node's clean stop; a worker's redelivery did not find the
older holder's entry. The registry now also reads the earlier key when the new one holds nothing (an entry there
counts only if it is that id's), and a clean stop deletes both keys. Real nats-server.

Figure: before, ``lookup("api-my_host-7")`` after its older process's clean stop: ``(None, False)`` (a death),
``stopped`` False; an older worker's live entry not found (None); a newer node's clean stop left no mark under the
earlier key (op None). Now ``(None, True)``, True, the entry, and a ``DEL`` mark."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import nats.js.errors

from gamead_core.embedded import EmbeddedNats
from tests.support import on_js


def _earlier_key(node_id: str) -> str:
    """The registry key a gamead before review41 F9 used (written out here: what an older node of the fleet does)."""
    return re.sub(r"[^-_=a-zA-Z0-9]", "_", node_id) or "_"


async def _older_mark(kv: Any, key: str) -> str | None:
    """The operation of the last write under ``key`` as an older gamead's lookup reads it (None: nothing there)."""
    try:
        await kv.get(key)
    except nats.js.errors.KeyDeletedError:
        return "DEL"
    except nats.js.errors.KeyNotFoundError as exc:
        return getattr(exc, "op", None)
    return "PUT"


async def _restarted(js: Any, registry: Any, node_id: str) -> Any:
    """The registry of a new process of ``node_id`` once its claim took the dead one's entry over (as
    :func:`gamead_core.registry.claim.claim` does after its watch): each process writes through its own, and one
    finding another process's entry in its key stops writing it (attack44c F1)."""
    restart = type(registry)(js._nc, js, registry.settings)
    restart.owner.taken_over(node_id, (await restart.revision(node_id))[0])
    return restart


def test_a_rolling_deploy_reads_and_marks_the_earlier_registry_keys(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    from gamead_core import names
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()

    async def drill(js: Any) -> dict[str, Any]:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        kv = await js.key_value(names.REGISTRY_BUCKET)
        older_api = api_node_info("api-my_host-7", started=time.time())
        older_worker = api_node_info("worker_1", started=time.time())
        other = api_node_info("w_1", started=time.time())  # an older node whose earlier key "w:1" shares
        for node in (older_api, older_worker, other):  # older gamead processes beat under the earlier key
            await kv.put(_earlier_key(node.id), node.model_dump_json().encode())
        await kv.delete(_earlier_key(older_api.id))  # and the older API stops cleanly, as an older gamead does
        newer = api_node_info("worker_2", started=time.time())
        await registry.put(newer)
        await registry.stop(newer)  # a newer node's clean stop, which an older reaper judges
        entry, _ = await registry.lookup(older_worker.id)
        shared, _ = await registry.lookup("w:1")
        return {"api": await registry.lookup(older_api.id), "api stopped": await registry.stopped(older_api),
                "worker": entry.id if entry else None, "w:1": shared.id if shared else None,
                "older mark": await _older_mark(kv, _earlier_key(newer.id))}

    got = on_js(server.url, drill)
    assert got["api"] == (None, True), "an older API's clean stop read as a death"
    assert got["api stopped"] is True
    assert got["worker"] == "worker_1", "an older worker's live entry not found"
    assert got["w:1"] is None, "another id's entry under the shared earlier key taken for this one's"
    assert got["older mark"] == "DEL", "a newer node's clean stop left no mark where an older reaper looks"


def test_a_later_process_clean_stop_does_not_hide_an_earlier_one_death(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review42 F3: a clean stop was told by the delete mark under the node's *id*: within ``registry.ttl`` of the
    clean stop of a later process under the same id (an API in a container whose gamead is PID 1 restarts as
    ``api-<host>-1`` again; a worker ``--id``), the earlier process, killed -9, read as stopped cleanly, so its
    records without a message were never queued again. The mark now names the stopping process (its incarnation),
    and counts only for it; a mark naming none (an older gamead's) still counts for any. Before: the killed one
    ``stopped`` True; now False, the later one True, and an older gamead's plain mark True."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()

    async def drill(js: Any) -> tuple[bool, bool, bool]:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        killed = api_node_info("api-box-1", started=time.time() - 60)
        later = killed.model_copy(update={"started_at": killed.started_at.replace(year=killed.started_at.year + 1)})
        await registry.put(killed)  # killed -9: no delete, no note
        restart = await _restarted(js, registry, killed.id)  # another process: a registry of its own
        await restart.put(later)
        await restart.stop(later)  # the later process of the same id stops cleanly
        older = api_node_info("api-older-1", started=time.time())
        await registry.put(older)
        await (await js.key_value("gamead_registry")).delete("api-older-1")  # an older gamead's clean stop
        return await registry.stopped(killed), await registry.stopped(later), await registry.stopped(older)

    killed, later, older = on_js(server.url, drill)
    assert killed is False, "a killed process read as stopped cleanly by a later process's delete mark"
    assert later is True and older is True



def test_a_clean_stop_does_not_delete_another_live_node_under_its_earlier_key(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review42b F1: a clean stop marked its id's earlier key too, which is many ids' (``w:1``, ``w@1``, ``w_1``
    all had ``w_1``) and one newer id's own key (``w.1``: ``.`` is ``_`` in both rules). So the clean stop of
    ``w_1`` deleted the live entry of ``w.1``, beating beside it: the reaper's next list lacked ``w.1``, and no
    mark of its own told a stop, so it was taken for dead and its ads recovered while it ran; and ``lookup("w_1")``
    of a killed ``w_1`` read ``w.1``'s clean stop as its own (a death seen as a stop). Now the earlier key is
    marked only over nothing, a mark or this id's own entry, and a mark there naming another id's process is not
    this id's. Figure: without the fix ``w.1`` after ``w_1``'s and ``w:1``'s stops: entry None, stopped False; a
    killed ``w_1`` after ``w.1``'s stop: deleted True. With it: ``w.1``'s entry, and deleted False."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()

    async def drill(js: Any) -> dict[str, Any]:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        dotted, under, colon = (api_node_info(i, started=time.time()) for i in ("w.1", "w_1", "w:1"))
        for node in (dotted, under, colon):
            await registry.put(node)
        await registry.stop(under)
        await registry.stop(colon)
        entry, _ = await registry.lookup("w.1")
        alive = {"entry": entry.id if entry else None, "listed": [n.id for n in await registry.list()]}
        dotted_2 = api_node_info("w.2", started=time.time())
        await registry.put(dotted_2)
        await registry.stop(dotted_2)  # w.2 stops cleanly; w_2, killed, has nothing under its key (expired)
        return {**alive, "killed": await registry.lookup("w_2")}

    got = on_js(server.url, drill)
    assert got["entry"] == "w.1", "another id's clean stop deleted a live node's entry"
    assert got["listed"] == ["w.1"]
    assert got["killed"] == (None, False), "another id's clean stop read as this id's"


def test_a_live_entry_under_the_key_keeps_the_earlier_key_mark_out(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review42b F7: ``Registry.stopped`` read the earlier key whenever the id's key held no delete mark, a live
    entry included, where ``lookup`` reads it only when nothing is there. Within ``registry.ttl`` of an older
    gamead's clean stop of ``api-my_host-1`` (a plain mark under ``api-my_host-1``), a newer process of that id,
    killed -9 and restarted (the restart's entry under ``api-my=5fhost-1``), read as stopped cleanly: its records
    without a message never queued again. Without the fix True (1 failed), with it False."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()

    async def drill(js: Any) -> bool:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        kv = await js.key_value("gamead_registry")
        older = api_node_info("api-my_host-1", started=time.time() - 120)
        await kv.put(_earlier_key(older.id), older.model_dump_json().encode())
        await kv.delete(_earlier_key(older.id))  # the older gamead's clean stop: a mark naming no process
        killed = api_node_info("api-my_host-1", started=time.time() - 60)
        await registry.put(killed)  # killed -9: no delete, no note
        restart = await _restarted(js, registry, killed.id)
        await restart.put(killed.model_copy(update={"pid": killed.pid + 1}))  # its restart beats under the key
        return await registry.stopped(killed)

    assert on_js(server.url, drill) is False, "a killed process read as stopped by an older process's mark"


def test_another_id_clean_stop_under_the_shared_earlier_key_is_not_this_one(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """attack42c F3: ``w_1`` and ``w:1`` (two keys now, one earlier key ``w_1``) beat at once; ``w_1`` stops cleanly
    (delete marks under ``w=5f1`` and ``w_1``), ``w:1`` is killed -9 and its entry expires (nothing under
    ``w=3a1``: here never written). ``lookup("w:1")`` read the earlier key and took ``w_1``'s mark for its own:
    ``(None, True)``, a clean stop, so the stats sampler did not count ``w:1`` gone (``found_again``) and a
    supervisor's recovery said nothing of it. Now ``(None, False)``; ``w_1``'s own ``(None, True)``, and an older
    gamead's plain mark there still counts (it names no process). Before the fix: ``(None, True)`` (1 failed)."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info

    server = fresh_nats()

    async def drill(js: Any) -> dict[str, Any]:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        underscore = api_node_info("w_1", started=time.time())
        await registry.put(underscore)
        await registry.stop(underscore)
        got = {"w:1": await registry.lookup("w:1"), "w_1": await registry.lookup("w_1")}
        await (await js.key_value("gamead_registry")).delete(_earlier_key("x@1"))  # an older gamead's stop of x@1
        got["x@1"] = await registry.lookup("x@1")
        return got

    got = on_js(server.url, drill)
    assert got["w:1"] == (None, False), "w_1's clean stop taken for w:1's"
    assert got["w_1"] == (None, True) and got["x@1"] == (None, True)
