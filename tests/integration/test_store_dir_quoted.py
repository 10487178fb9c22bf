"""leftout59: ``nats.conf`` wrote the store directory between double quotes as it is, and nats-server reads escapes
there: a data dir ``a\\nb`` (a backslash, an n: a valid name) had its JetStream store in ``a⏎b``, outside the data
dir gamead checks (its disk, its size), and one holding ``"`` made a config that is no config. It is quoted as JSON
now: the store is under the data dir, whatever its name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from gamead_core.embedded import EmbeddedNats


@pytest.mark.parametrize("name", ["back\\nslash", 'quote"d'])
def test_the_store_is_under_the_data_dir_whatever_its_name(tmp_path: Path, name: str) -> None:
    server = EmbeddedNats(tmp_path / name).start()
    try:
        async def stream() -> None:
            nc = await nats.connect(server.url, token=server.token) if server.token else await nats.connect(server.url)
            try:
                await nc.jetstream().add_stream(name="PROBE", subjects=["probe.x"])
            finally:
                await nc.close()

        asyncio.run(stream())
        assert (tmp_path / name / "jetstream").is_dir(), sorted(p.name for p in tmp_path.iterdir())
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no store beside it (before: `back⏎slash`)
    finally:
        server.stop()
