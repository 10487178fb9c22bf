"""attack30a F5-F7 on a real API, worker and NATS (the session stack): the ``Idempotency-Key`` header on ``POST
/ads/batch`` gives each ad the key ``<header>-<index>``, so a resent batch queues nothing twice (F5); the answer
counts ``duplicates`` apart (F6); a quoted header (the draft's Structured Field string) is the bare key (F7)."""

from __future__ import annotations

import uuid

import httpx

from tests.support import ad, wait_terminal


def submitted_total(client: httpx.Client) -> float:
    """``sum(gamead_ads_submitted_total)`` of the API's ``/metrics`` (newly queued ads, not duplicates)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for fam in text_string_to_metric_families(client.get("/metrics").text)
               for s in fam.samples if s.name == "gamead_ads_submitted_total")


def test_a_resent_batch_with_the_header_queues_nothing_twice(client: httpx.Client) -> None:
    """The finding's drill: a client following the draft resends a batch with its ``Idempotency-Key``. Every ad
    is answered ``duplicate: true`` with its first id, nothing more is queued or analysed, and the answer counts
    the repeats in ``duplicates`` (beside ``accepted``, which keeps counting every ad on the queue)."""
    run = uuid.uuid4().hex[:8]
    key = f"batch-{run}"
    ads = [ad(f"Header Batch {run} #{i}", priority=1 + i % 5) for i in range(4)]
    before = submitted_total(client)
    first = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["duplicates"], first.json()["rejected"]) == (4, 0, 0)
    ids = [r["id"] for r in first.json()["results"]]
    done = [wait_terminal(client, ad_id) for ad_id in ids]
    assert [r["status"] for r in done] == ["completed"] * 4

    again = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": key})
    assert again.status_code == 200, again.text
    body = again.json()
    assert [(r["id"], r["duplicate"]) for r in body["results"]] == [(i, True) for i in ids]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (4, 4, 0)
    assert submitted_total(client) == before + 4  # four ads queued in all, not eight
    # analysed once: each record is the one first completed, not queued again
    assert [client.get(f"/ads/{i}").json() for i in ids] == done
    # the keys are those `gamead submit --idempotency-key` derives: the single route names the same ad
    single = client.post("/ads", json=ads[2], headers={"Idempotency-Key": f"{key}-2"}).json()
    assert (single["id"], single["duplicate"]) == (ids[2], True)


def test_a_changed_item_is_refused_and_an_item_s_own_key_wins(client: httpx.Client) -> None:
    run = uuid.uuid4().hex[:8]
    key, own = f"mixed-{run}", f"own-{run}"
    ads = [ad(f"Mixed {run} A"), ad(f"Mixed {run} B")]
    first = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": key}).json()["results"]
    changed = client.post("/ads/batch", headers={"Idempotency-Key": key}, json={"ads": [
        ads[0], ad(f"Mixed {run} B changed"), {**ad(f"Mixed {run} C"), "idempotencyKey": own}]}).json()
    assert (changed["results"][0]["id"], changed["results"][0]["duplicate"]) == (first[0]["id"], True)
    assert changed["results"][1]["error"]["code"] == "idempotency_key_reused"
    assert changed["results"][1]["error"]["details"] == {"idempotencyKey": f"{key}-1", "adId": first[1]["id"]}
    assert (changed["accepted"], changed["duplicates"], changed["rejected"]) == (2, 1, 1)
    third = changed["results"][2]
    single = client.post("/ads", json=ad(f"Mixed {run} C"), headers={"Idempotency-Key": own}).json()
    assert (single["id"], single["duplicate"]) == (third["id"], True)  # its own key, not mixed-…-2


def test_a_header_too_long_for_the_batch_is_refused_before_anything_is_queued(client: httpx.Client) -> None:
    """On a batch of 12 ads the last key is ``K-11``: K may have 197 characters, not 198 (a key is at most 200)."""
    run = uuid.uuid4().hex[:8]
    ads = [ad(f"Long Key {run} #{i}") for i in range(12)]
    before = submitted_total(client)
    refused = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": run + "k" * 190})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert error["details"] == {"header": "Idempotency-Key", "max": 197}
    assert "198 characters" in error["message"] and "at most 197" in error["message"]
    assert submitted_total(client) == before
    fits = client.post("/ads/batch", json={"ads": ads}, headers={"Idempotency-Key": run + "k" * 189})
    assert fits.status_code == 200 and fits.json()["accepted"] == 12, fits.text
    assert submitted_total(client) == before + 12


def test_the_header_s_rules_hold_on_a_batch(client: httpx.Client) -> None:
    """The batch reads the header as ``POST /ads`` does: twice, a comma, a character outside the rule → 400."""
    body = {"ads": [ad("Header Rules")]}
    twice = client.post("/ads/batch", json=body, headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    comma = client.post("/ads/batch", json=body, headers={"Idempotency-Key": "a, b"})
    control = client.post("/ads/batch", json=body, headers={"Idempotency-Key": "ключ".encode()})
    assert [r.status_code for r in (twice, comma, control)] == [400] * 3
    assert [r.json()["error"]["code"] for r in (twice, comma, control)] == [
        "duplicate_header", "duplicate_header", "invalid_idempotency_key"]


def test_a_quoted_key_is_the_bare_key(client: httpx.Client) -> None:
    """F7: the draft sends the key as a Structured Field string (``"k"``, RFC 8941 §3.3.3), curl users send it
    bare: one key, so one ad, on both routes; escapes are read; an invalid sf-string is refused."""
    run = uuid.uuid4().hex[:8]
    body = ad(f"Quoted {run}")
    quoted = client.post("/ads", json=body, headers={"Idempotency-Key": f'"q-{run}"'})
    bare = client.post("/ads", json=body, headers={"Idempotency-Key": f"q-{run}"})
    assert (quoted.status_code, bare.status_code) == (202, 202)
    assert (bare.json()["id"], bare.json()["duplicate"]) == (quoted.json()["id"], True)
    escaped = client.post("/ads", json=ad(f"Escaped {run}"), headers={"Idempotency-Key": f'"e-{run}\\"x\\\\"'})
    assert escaped.status_code == 202, escaped.text
    record = client.get(f"/ads/{escaped.json()['id']}").json()
    assert record["idempotencyKey"] == f'e-{run}"x\\'
    batch = [ad(f"Quoted Batch {run}")]
    first = client.post("/ads/batch", json={"ads": batch}, headers={"Idempotency-Key": f"b-{run}"}).json()
    again = client.post("/ads/batch", json={"ads": batch}, headers={"Idempotency-Key": f'"b-{run}"'}).json()
    assert (again["results"][0]["id"], again["results"][0]["duplicate"]) == (first["results"][0]["id"], True)
    for bad in (f'"q-{run}', f'"q-{run}\\n"', f'"q-{run}";a=1', '""'):
        for route, json_body in (("/ads", body), ("/ads/batch", {"ads": batch})):
            refused = client.post(route, json=json_body, headers={"Idempotency-Key": bad})
            assert refused.status_code == 400, (route, bad, refused.text)
            assert refused.json()["error"]["code"] == "invalid_idempotency_key", (route, bad)
