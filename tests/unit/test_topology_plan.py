"""Pure: what gamead wants of JetStream, and how an existing object is judged (missing, incompatible, limits to
update, ok) without a server."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.topology import (
    Snapshot,
    compare_consumer,
    compare_stream,
    consumer_config,
    kv_stream_config,
    plan,
    stream_config,
    wanted_topology,
)

SETTINGS = GameadSettings()
WANTED = wanted_topology(SETTINGS)


def as_server_has_it(settings: GameadSettings = SETTINGS) -> Snapshot:
    """A snapshot in which every object exists exactly as gamead creates it."""
    streams: dict[str, StreamConfig] = {}
    consumers: dict[tuple[str, str], ConsumerConfig] = {}
    for w in WANTED if settings is SETTINGS else wanted_topology(settings):
        if w.kind == "consumer":
            consumers[(w.stream, w.name)] = w.config  # type: ignore[assignment]
        else:
            streams[w.stream] = w.stream_config()
    return Snapshot(streams, consumers)


def test_every_object_gamead_creates_is_declared_once() -> None:
    labels = [w.label for w in WANTED]
    # 3 streams (the audit trail's included), 5 consumers, 7 buckets (the jobs and clean-stop buckets included; the
    # advisory stream and its consumer gone)
    assert len(labels) == len(set(labels)) == 15
    assert not any(name in label for name in names.OBSOLETE_STREAMS for label in labels)
    assert f"stream {names.AUDIT_STREAM}" in labels  # the audit trail (issue 11 item 3)
    assert {w.label for w in WANTED if w.essential} == {f"stream {names.ADS_STREAM}", f"bucket {names.ADS_BUCKET}"}
    kinds = {w.kind for w in WANTED}
    assert kinds == {"stream", "consumer", "bucket"}
    for bucket in (names.ADS_BUCKET, names.REGISTRY_BUCKET, names.LEASES_BUCKET, names.SCALING_BUCKET,
                   names.HEALTH_BUCKET, names.JOBS_BUCKET, names.STOPS_BUCKET):
        assert f"bucket {bucket}" in labels


def test_a_server_without_atomic_batches_is_neither_asked_nor_judged_for_allow_atomic() -> None:
    """attack39b F13: nats-server 2.11 (the manifests' image then) has no atomic batches and drops a stream's
    ``allow_atomic``; as it reports the streams, GAMEAD_ADS and gamead_ads differed (``allow_atomic``) at every start,
    which "repaired" them in vain, and `gamead doctor` kept a ``topology_limits`` no one could clear. Figure: the
    first assertion, what every start saw. For such a server (``server_takes_atomic`` False) nothing differs."""
    have = as_server_has_it()
    as_211 = Snapshot({name: replace(c, allow_atomic=None) for name, c in have.streams.items()}, have.consumers)
    differs = {v.wanted.label: v.difference.limits for v in plan(WANTED, as_211) if v.state != "ok"}
    assert differs == {f"stream {names.ADS_STREAM}": ("allow_atomic",), f"bucket {names.ADS_BUCKET}": ("allow_atomic",)}
    older = wanted_topology(SETTINGS, atomic=False)
    assert {v.state for v in plan(older, as_211)} == {"ok"}
    assert not [w.label for w in older if isinstance(w.config, StreamConfig) and w.config.allow_atomic]
    assert [w.label for w in older] == [w.label for w in WANTED]  # only that field differs


def test_all_present_is_all_ok() -> None:
    assert {v.state for v in plan(WANTED, as_server_has_it())} == {"ok"}


def test_a_deleted_consumer_is_missing_and_nothing_else() -> None:
    snap = as_server_has_it()
    consumers = dict(snap.consumers)
    del consumers[(names.ADS_STREAM, "gamead-p3")]
    verdicts = {v.wanted.label: v.state for v in plan(WANTED, replace(snap, consumers=consumers))}
    assert verdicts.pop("consumer gamead-p3") == "missing"
    assert set(verdicts.values()) == {"ok"}


def test_a_deleted_stream_takes_its_consumers_with_it() -> None:
    snap = as_server_has_it()
    streams = {k: v for k, v in snap.streams.items() if k != names.ADS_STREAM}
    consumers = {k: v for k, v in snap.consumers.items() if k[0] != names.ADS_STREAM}
    missing = {v.wanted.label for v in plan(WANTED, Snapshot(streams, consumers)) if v.state == "missing"}
    assert missing == {f"stream {names.ADS_STREAM}", *(f"consumer gamead-p{lvl}" for lvl in names.LEVELS)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"retention": RetentionPolicy.LIMITS}, "retention"),
        ({"subjects": ["other.*"]}, "subjects"),
        ({"storage": StorageType.MEMORY}, "storage"),
    ],
)
def test_a_stream_that_cannot_work_is_incompatible(change: dict[str, object], reason: str) -> None:
    wanted = stream_config(SETTINGS.queue)
    diff = compare_stream(wanted, replace(wanted, **change))
    assert diff.incompatible is not None and reason in diff.incompatible and names.ADS_STREAM in diff.incompatible


def test_limits_differ_but_the_stream_is_usable() -> None:
    wanted = stream_config(SETTINGS.queue)
    diff = compare_stream(wanted, replace(wanted, max_msgs=3, max_bytes=4096, subjects=list(reversed(wanted.subjects))))
    assert diff.incompatible is None and diff.limits == ("max_msgs", "max_bytes")


@given(st.floats(min_value=1, max_value=1e7), st.integers(min_value=-1, max_value=10**9))
def test_only_what_gamead_sets_is_compared(max_age: float, max_msgs: int) -> None:
    """nats-py's unset values (None, 0) never count as a difference, whatever the server holds."""
    wanted = StreamConfig(name="S", subjects=["s.*"], retention=RetentionPolicy.LIMITS, max_age=None,
                          duplicate_window=0, max_msgs=None)
    have = replace(wanted, max_age=max_age, duplicate_window=120.0, max_msgs=max_msgs)
    assert compare_stream(wanted, have).limits == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"filter_subject": "gamead.ads.p4"}, "filter"),
        ({"ack_policy": AckPolicy.ALL}, "ack policy"),
        ({"deliver_subject": "push.here"}, "push consumer"),
    ],
)
def test_a_consumer_that_cannot_work_is_incompatible(change: dict[str, object], reason: str) -> None:
    wanted = consumer_config(3, SETTINGS.queue)
    diff = compare_consumer(names.ADS_STREAM, wanted, replace(wanted, **change))
    assert diff.incompatible is not None and reason in diff.incompatible
    assert "nats consumer rm GAMEAD_ADS gamead-p3" in diff.incompatible  # the one line says the fix


def test_consumer_limits_are_updatable() -> None:
    wanted = consumer_config(3, SETTINGS.queue)
    diff = compare_consumer(names.ADS_STREAM, wanted, replace(wanted, ack_wait=wanted.ack_wait + 1.5,
                                                               max_deliver=9))
    assert diff.incompatible is None and diff.limits == ("ack_wait", "max_deliver")


def test_a_bucket_is_judged_by_the_stream_that_holds_it() -> None:
    snap = as_server_has_it()
    streams = dict(snap.streams)
    kv = streams[f"KV_{names.ADS_BUCKET}"]
    streams[f"KV_{names.ADS_BUCKET}"] = replace(kv, subjects=["not.a.kv.>"])
    (bad,) = [v for v in plan(WANTED, replace(snap, streams=streams)) if v.state != "ok"]
    assert bad.wanted.label == f"bucket {names.ADS_BUCKET}" and bad.state == "incompatible"
    assert "not a usable KV bucket" in (bad.difference.incompatible or "")


def test_a_bucket_with_another_ttl_only_needs_a_limit_update() -> None:
    (registry,) = [w for w in WANTED if w.name == names.REGISTRY_BUCKET]
    have = replace(registry.stream_config(), max_age=99.0)
    diff = compare_stream(registry.stream_config(), have)
    assert diff.incompatible is None and diff.limits == ("max_age",)
    assert kv_stream_config(registry.config).storage == StorageType.MEMORY  # type: ignore[arg-type]


def test_gamead_s_metadata_keys_are_a_limit_and_the_server_s_are_ignored() -> None:
    wanted = replace(stream_config(SETTINGS.queue), metadata={"gamead_key": "60"})
    have = replace(wanted, metadata={"_nats.req.level": "1", "gamead_key": "60"})
    assert compare_stream(wanted, have).limits == ()
    have = replace(wanted, metadata={"_nats.req.level": "1", "gamead_key": "30"})
    assert compare_stream(wanted, have).limits == ("metadata",)


def test_a_bucket_ttl_cut_below_its_duplicate_window_cuts_the_window_too() -> None:
    """``registry.ttl`` 10 → 4 on an existing bucket: nats-py created it with a 10 s window (min(120, ttl)), and
    JetStream refused the update to max_age 4 with the window left at 10 (NATS 10052); the window follows."""
    from gamead_core.queue.topology_plan import limit_values
    have = StreamConfig(name="KV_r", subjects=["$KV.r.>"], max_age=10.0, duplicate_window=10.0)
    target = StreamConfig(name="KV_r", subjects=["$KV.r.>"], max_age=4.0)
    assert limit_values(target, have, ("max_age",)) == {"max_age": 4.0, "duplicate_window": 4.0}
    longer = StreamConfig(name="KV_r", subjects=["$KV.r.>"], max_age=60.0)
    assert limit_values(longer, have, ("max_age",)) == {"max_age": 60.0}  # a window within the age is kept


def test_a_jobs_bucket_made_without_direct_gets_gets_them_in_place() -> None:
    """``GET /v1/jobs`` reads the job documents by key, with direct gets (``gamead_core.queue.snapshot``): a jobs
    bucket nats-py made before (``allow_direct`` off) is updated in place, not left off. Figure before: no
    difference found (``kv_stream_config`` dropped ``direct``), so such a bucket was never updated."""
    (jobs,) = [w for w in WANTED if w.name == names.JOBS_BUCKET]
    have = replace(jobs.stream_config(), allow_direct=None)
    diff = compare_stream(jobs.stream_config(), have)
    assert diff.incompatible is None and diff.limits == ("allow_direct",)
