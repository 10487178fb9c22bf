"""Which failed publishes make the un-keyed submit take its record back (:func:`gamead_core.queue.publish.not_stored`):
only those that certainly stored nothing. A timeout may have stored the message, so its record is kept (a
stored message must find its record); both answer 503."""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors
import pytest

from gamead_core.errors import GameadError, QueueFull, QueueUnavailable, StorageFailed, TopologyMissing
from gamead_core.queue.publish import not_stored
from gamead_core.queue.connection import translate


def _from(exc: BaseException) -> GameadError:
    out = translate(exc)
    assert isinstance(out, GameadError)
    out.__cause__ = exc  # as nats_boundary raises it: ``raise translate(exc) from exc``
    return out


@pytest.mark.parametrize(("error", "refused"), [
    (QueueFull("maximum messages exceeded"), True),
    (StorageFailed("insufficient resources"), True),
    (TopologyMissing("stream not found"), True),
    (_from(nats.js.errors.NoStreamResponseError()), True),
    (_from(nats.errors.ConnectionClosedError()), True),
    (_from(nats.js.errors.ServiceUnavailableError(code=503, description="JetStream system temporarily unavailable")),
     True),
    (_from(asyncio.TimeoutError()), False),
    (_from(nats.errors.TimeoutError()), False),
    (QueueUnavailable("ad was stored by stream 'OTHER', expected GAMEAD_ADS"), False),
])
def test_only_a_publish_that_stored_nothing_takes_the_record_back(error: GameadError, refused: bool) -> None:
    assert not_stored(error) is refused
