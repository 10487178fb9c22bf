"""attack27b F1, the pure half: which JetStream store is full, what the doctor says of a refused registry write,
and what ``/readyz`` says of a failing heartbeat."""

from __future__ import annotations

from gamead_core.doctor.model import KIND_BY_CODE
from gamead_core.doctor.writable import INSUFFICIENT_RESOURCES, probe_store_needed, refusal_line, store_use
from gamead_core.registry.beat import BeatHealth

MIB = 1024 * 1024


def test_a_store_at_its_limit_is_named_with_its_use_and_what_it_stops() -> None:
    full = store_use(256 * MIB, 256 * MIB, 10 * MIB, -1)
    assert full == {"memory": "JetStream memory store full: 256.0 of 256.0 MiB; the registry (a memory stream) "
                              "refuses writes: nodes cannot beat, workers take no work"}
    assert list(store_use(0, -1, 5 * MIB, 4 * MIB)) == ["file"]
    assert store_use(255 * MIB, 256 * MIB, 0, 0) == {}  # under its limit, or no limit (-1, 0): nothing to say


def test_a_refused_registry_write_says_the_memory_store_and_that_workers_take_no_work() -> None:
    line = refusal_line("insufficient resources (code 10023)", 8 * MIB, INSUFFICIENT_RESOURCES)
    assert line.startswith("JetStream memory store full (8.0 MiB used")
    assert "insufficient resources (code 10023)" in line and "every worker takes no work" in line
    other = refusal_line("timed out", 1 * MIB)
    assert "full" not in other and "timed out" in other


def test_the_new_kinds_are_findings_never_repaired() -> None:
    for code in ("store_full", "registry_unwritable"):
        kind = KIND_BY_CODE[code]
        assert kind.repair is None and kind.why_not and kind.items == "object"


def test_readiness_says_the_heartbeat_writes_are_refused_and_for_how_long() -> None:
    health = BeatHealth(last_ok=100.0)
    assert health.readiness(130.0) == "ok"
    health.failing, health.error = True, "insufficient resources (code 10023)"
    text = health.readiness(130.0)
    assert text.startswith("degraded: writes refused for 30 s: insufficient resources (code 10023)"), text


def test_a_full_file_store_is_said_once_not_again_as_store_unwritable() -> None:
    # review29 F8: a file store at the account's max_storage was both store_full and store_unwritable
    assert not probe_store_needed(store_use(0, -1, 5 * MIB, 4 * MIB))
    assert probe_store_needed(store_use(256 * MIB, 256 * MIB, 0, -1))  # the memory store full: writes still probed
    assert probe_store_needed({})  # a full disk or the server's max_file_store: only the probe sees it
