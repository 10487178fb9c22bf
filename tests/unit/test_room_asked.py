"""attack38a F4: JetStream with no room for an object gamead creates. The line says which object could not be placed,
what gamead's objects reserve on each server in all, the settings those sizes come from and the server's (before: only
"no suitable peers for placement, insufficient storage (code 10005)"). Pure: the wanted topology of default settings."""

from __future__ import annotations

from gamead_core.config import GameadSettings
from gamead_core.queue.room_asked import room_asked
from gamead_core.queue.topology_plan import wanted_topology


def _wanted(**queue: object) -> dict[str, object]:
    settings = GameadSettings(queue=queue) if queue else GameadSettings()
    return {w.label: w for w in wanted_topology(settings)}


def test_the_line_names_the_object_what_gamead_reserves_per_server_and_the_settings() -> None:
    wanted = _wanted(replicas=3)
    records = next(w for label, w in wanted.items() if "gamead_ads" in label and "bucket" in label)
    line = room_asked(records, wanted.values())
    print(line)
    assert line.startswith("bucket gamead_ads could not be placed") and "on each of 3 servers" in line
    assert "records.max_bytes 4.0 GiB" in line and "queue.max_bytes" in line and "max_file_store" in line
    consumer = next(w for w in wanted.values() if w.kind == "consumer")
    assert "records.max_bytes 4.0 GiB" in room_asked(consumer, wanted.values())
