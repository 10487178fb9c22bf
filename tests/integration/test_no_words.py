"""attack29b F3: an ad whose title and description hold no letter (emoji only, private-use characters) was accepted
(202) and dead-lettered at its first attempt ("no words to analyse"), then again at every DLQ replay. The submit
routes now refuse it as the validation failure it is; an ad with a letter in either text is still taken. Real API
and worker (the session stack)."""

from __future__ import annotations

import httpx

AD = {"genre": "RPG", "callToAction": "Play now", "duration": 15}
NO_WORDS = [("👨‍👩‍👧 🏳️‍🌈", "👨‍👩‍👧 🎮 123"), ("\U000f0000\U00100000", "!!! ??? 42")]


def test_an_ad_without_a_letter_is_refused_at_submit_not_dead_lettered(client: httpx.Client) -> None:
    for title, description in NO_WORDS:
        refused = client.post("/ads", json={**AD, "title": title, "description": description})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "validation_failed" and "no letters" in error["message"], error
        assert [d["loc"] for d in error["details"]] == ["description"], error  # attack29c F5: a field, not (body)
    taken = client.post("/ads", json={**AD, "title": "🎮 Sky", "description": "👨‍👩‍👧"})  # a letter in the title
    assert taken.status_code == 202, taken.text


def test_a_batch_refuses_only_its_ads_without_a_letter(client: httpx.Client) -> None:
    ads = [{**AD, "title": "Sky Saga", "description": "Fly"}, {**AD, "title": "🎮", "description": "🎮"},
           {**AD, "title": "Sea", "description": "Sail", "idempotencyKey": "no-words-1"},
           {**AD, "title": "🎮", "description": "🎮", "idempotencyKey": "no-words-2"}]
    answer = client.post("/ads/batch", json={"ads": ads})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert ["id" in r for r in results] == [True, False, True, False], results
    assert all(r["error"]["code"] == "validation_failed" and "no letters" in r["error"]["message"]
               for r in (results[1], results[3])), results
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (2, 2)
    unkeyed = client.post("/ads/batch", json={"ads": ads[:2]})  # the batch path without keys reads ads apart
    assert [("id" in r) for r in unkeyed.json()["results"]] == [True, False], unkeyed.text
