"""What ``gamead up``'s console says of a Redis its API cannot use (attack41a F4) and of spans it cannot export
(attack45 F6): the rule."""

from __future__ import annotations


def test_a_redis_unusable_past_the_ttl_is_said_once_and_its_return_once() -> None:
    """attack41a F4 (the rule of gamead_cli/commands/up_soft.py): one reading not ok is not said; no answer and
    ``disabled`` count neither way."""
    from gamead_cli.commands.up_soft import redis_note
    from gamead_core.scaling.ready_watch import Reading

    now = [0.0]
    note = redis_note(10.0, clock=lambda: now[0])

    def at(t: float, redis: str | None, ready: bool | None = True) -> object:
        now[0] = t
        found = note.observe(Reading(ready, redis=redis))
        return None if found is None else (found.good, found.text)

    down = "degraded: cannot connect: connection refused (circuit open)"
    assert at(0, down) is None and at(5, "ok") is None, "one failed reading, then ok: nothing said"
    assert at(6, down) is None and at(10, None, None) is None and at(16, down) is None
    good, text = at(16.5, down)  # type: ignore[misc]
    assert not good and text.startswith("the API cannot use Redis (redis.url) for 10.5s (registry.ttl 10s): " + down)
    assert at(30, down) is None, "said once"
    assert at(31, "ok") == (True, "the API uses Redis (redis.url) again after 25.0s: rate limits are shared and "
                                  "the record cache is used again")
    assert at(32, "ok") is None and at(33, "disabled") is None


def test_spans_not_exported_past_the_ttl_are_said_once_with_where_they_go() -> None:
    """attack45 F6: traces to an unreachable collector were said in the children's logs only."""
    from gamead_cli.commands.up_soft import tracing_note
    from gamead_core.scaling.ready_watch import Reading

    now = [0.0]
    note = tracing_note(10.0, "sent by OTLP http/protobuf to http://127.0.0.1:9/v1/traces", clock=lambda: now[0])
    failing = "degraded: spans not exported for 4 s (2 batches, 7 spans dropped): the exporter could not send them"

    def at(t: float, tracing: str | None) -> object:
        now[0] = t
        found = note.observe(Reading(True, tracing=tracing))
        return None if found is None else (found.good, found.text)

    assert at(0, failing) is None and at(10, failing) is None and at(9_999, "disabled") is None
    good, text = at(10.5, failing)  # type: ignore[misc]
    assert not good and text.startswith("the API's exporter cannot send its spans (sent by OTLP http/protobuf to "
                                        "http://127.0.0.1:9/v1/traces): spans not exported for 4 s (2 batches, 7 "
                                        "spans dropped): the exporter could not send them. Ads still flow"), text
    assert at(12, failing) is None, "said once"
    assert at(13, "ok") == (True, "the API's spans are exported again after 13.0s (sent by OTLP http/protobuf to "
                                  "http://127.0.0.1:9/v1/traces)")
