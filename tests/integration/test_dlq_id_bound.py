"""attack44 F2: `dlq replay`/`purge` by ids had two bounds: the schema's `maxItems` (100,000) and the body cap
(`api.max_body_bytes`, 64 KiB), which refused ~2,250 ids as a number of bytes. Now one bound, in ids
(`gamead_core.api.body_caps.MAX_IDS`): the schema says it, the API takes a body of that many ids whatever
`api.max_body_bytes` is, and the CLI refuses more before any request (exit 2, a line in ids).

Without the fix: the 10,000-id dry run was 413 `payload_too_large` (the body is 290,002 bytes), one more id
too (not a 422 naming `ids`), and the CLI sent 10,001 ids and said `the body is … bytes`, exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app as cli
from gamead_core.ad_ids import new_ad_id
from gamead_core.api.body_caps import MAX_IDS
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401


@pytest.fixture(scope="module")
def lane(shared_lane: Lane) -> Iterator[Lane]:  # noqa: F811 - the module's lane
    yield shared_lane


def _ids(n: int) -> list[str]:
    return [new_ad_id() for _ in range(n)]


def test_the_schema_says_the_bound_the_api_serves(lane: Lane) -> None:
    """`ids`' maxItems is MAX_IDS on both routes; a body of that many ids, pretty-printed, is taken (a dry run
    counts them: 1 dead entry among them matched), one id more is a 422 naming `ids`, never a 413 in bytes."""
    schema = lane.http.get("/openapi.json").json()
    for path in ("/v1/dlq/replay", "/v1/dlq/purge"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ref = body.get("$ref", "").rsplit("/", 1)[-1]
        fields = schema["components"]["schemas"][ref]["properties"] if ref else body["properties"]
        ids = fields["ids"]
        bound = ids.get("maxItems") or next(o for o in ids["anyOf"] if o.get("type") == "array")["maxItems"]
        assert bound == MAX_IDS, (path, ids)
    entry = made_up_entry("Bound Dead")
    assert lane.run_job("/v1/dlq/import", {"entries": [entry]})["state"] == "succeeded"
    many = [entry["adId"], *_ids(MAX_IDS - 1)]
    for path in ("/v1/dlq/replay", "/v1/dlq/purge"):
        text = json.dumps({"ids": many, "dryRun": True}, indent=2)  # a client may pretty-print
        assert len(text) > 64 * 1024
        # the API looks the 10,000 ids up one after another: 1.7 s alone, past the lane's 30 s at load 15-25 (both
        # full runs of suite46 failed here with a ReadTimeout); its answer, not its time, is what this test checks
        resp = lane.http.post(path, content=text, headers={"Content-Type": "application/json"}, timeout=180)
        assert resp.status_code == 200, resp.text[:300]
        assert (resp.json()["matched"], resp.json()["notInDlq"]) == (1, MAX_IDS - 1)
        resp = lane.http.post(path, json={"ids": [*many, new_ad_id()], "dryRun": True})
        assert resp.status_code == 422, resp.text[:300]
        assert resp.json()["error"]["code"] == "validation_failed"
        assert resp.json()["error"]["details"][0]["loc"] == "ids"
    assert lane.http.get(f"/v1/dlq/{entry['adId']}").status_code == 200  # a dry run did nothing


@pytest.mark.parametrize("verb", ["replay", "purge"])
def test_the_cli_refuses_more_ids_than_the_api_takes_before_any_request(lane: Lane, verb: str) -> None:
    """One line in ids, exit 2, nothing sent (the job count is unchanged)."""
    jobs = lane.http.get("/v1/jobs", params={"limit": 1000}).json()["count"]
    result = CliRunner().invoke(cli, ["dlq", verb, *_ids(MAX_IDS + 1), "--yes", "--api", lane.url])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"{MAX_IDS + 1:,} ids: at most {MAX_IDS:,} per command" in said, said
    assert "bytes" not in said
    assert lane.http.get("/v1/jobs", params={"limit": 1000}).json()["count"] == jobs
