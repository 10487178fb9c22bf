"""attack41c F5: on one nats-server, a deleted work stream was recreated only once the first write that met it had
spent its whole publish deadline: since writes are sent again on "no responders" (attack40b F3), the
``topology_missing`` that asked the topology watch for a check came at that deadline, 2 s by default, and every
submit of those seconds waited or was refused. The API's watch is now told of a write's first "no responders"
(:func:`gamead_core.queue.acks.on_no_responders`, one server only: on a cluster it is a leader being elected) and
checks at once; the write's next resend finds the stream back and is taken. Real nats-server and API.

Figure: with a 10 s publish deadline and the periodic check out of the way (once an hour), a submit after the work
stream was deleted: 202, the stream recreated holding its message (without the hook: 503 ``topology_missing`` after 10 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, on_js, start_api, wait_for


def test_a_deleted_work_stream_is_recreated_at_the_first_write_that_meets_it(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="10",
                         GAMEAD_API__TOPOLOGY_CHECK_INTERVAL="3600", GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    stream = names.work_stream(0)
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/ads", json=ad("Before the delete")).status_code == 202

        async def delete(js: Any) -> bool:
            return bool(await js.delete_stream(stream))

        assert on_js(server.url, delete)
        answer = client.post("/ads", json=ad("After the delete"))
        assert answer.status_code == 202, answer.text
        ad_id = answer.json()["id"]

    async def messages(js: Any) -> int:
        return int((await js.stream_info(stream)).state.messages)

    assert on_js(server.url, messages) == 1  # recreated, holding the second ad's message (the first went with it)
    wait_for(lambda: httpx.get(f"{url}/ads/{ad_id}", timeout=10).json().get("status") == "queued", timeout=10,
             what="the ad queued")
