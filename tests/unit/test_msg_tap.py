"""``benchmarks/msg_tap.py``'s classes: what the per-ad message table in ``benchmarks/README.md`` counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "msg_tap", Path(__file__).resolve().parents[2] / "benchmarks" / "msg_tap.py")
assert _spec is not None and _spec.loader is not None
msg_tap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(msg_tap)
classify = msg_tap.classify

ACK = "$JS.ACK.GAMEAD_ADS.gamead-p3.1.42.40.1764500000000000000.0"


def test_each_kind_of_message_of_an_ad_has_its_class() -> None:
    assert classify("$JS.API.CONSUMER.MSG.NEXT.GAMEAD_ADS.gamead-p3", "_INBOX.a", None,
                    b'{"batch":4,"no_wait":true}') == "pull request no_wait"
    assert classify("$JS.API.CONSUMER.MSG.NEXT.GAMEAD_ADS.gamead-p3", "_INBOX.a", None,
                    b'{"batch":1,"expires":5000000000}') == "pull request long-poll"
    assert classify("gamead.ads.3", ACK, {"Gamead-Ad-Id": "x"}, b"{}") == "delivery GAMEAD_ADS"  # as routed
    assert classify("gamead.ads.3", "_INBOX.b", {"Nats-Msg-Id": "x"}, b"{}") == "work publish"
    assert classify("_INBOX.b", "", None, b'{"stream":"GAMEAD_ADS","seq":42}') == "pub ack GAMEAD_ADS"
    assert classify("_INBOX.a", "", {"Status": "408"}, b"") == "status 408"
    assert classify(ACK, "", None, b"") == "ack +ACK GAMEAD_ADS"  # an empty body is an ack
    assert classify(ACK, "_INBOX.c", None, b"+WPI") == "ack +WPI (with reply) GAMEAD_ADS"
    assert classify("$KV.gamead_ads.01J", "_INBOX.d", None, b"{}") == "KV write gamead_ads"
    assert classify("$KV.gamead_ads.01J", "$JS.ACK.KV_gamead_ads.w.1.2.3.4.0", None, b"{}") == \
        "delivery KV_gamead_ads"  # a watcher's copy is not a write
    assert classify("$JS.API.CONSUMER.INFO.GAMEAD_ADS.gamead-p1", "_INBOX.e", None, b"") == "API consumer info"
    assert classify("$JS.API.DIRECT.GET.GAMEAD_ADS", "_INBOX.f", None, b"{}") == "API direct get"
    assert classify("_INBOX.f", "", {"Nats-Stream": "GAMEAD_ADS"}, b"{}") == "direct get answer GAMEAD_ADS"
    assert classify("$JS.EVENT.ADVISORY.API", "", None, b"{}") == "JetStream advisory api"
