"""Pure parts of issue 11 items 3 and 8: the audit trail's rules (actions, request ids, filters, the refusal
throttle) and the API contract built without a server (every status documented, no dangling ``$ref``, strict
bodies, ``Allow``)."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from gamead_core.api.app import create_app
from gamead_core.api.body import parse_body
from gamead_core.api.contract import EVERY_ROUTE, GUARDED_ROUTE, allowed_methods, dangling_refs, error_statuses
from gamead_core.api.errors import ApiError
from gamead_core.api.routes_dlq import ImportBody, PurgeBody, ReplayBody
from gamead_core.api.routes_scale import OverrideBody
from gamead_core.audit.model import (
    AuditFilter,
    AuditRecord,
    RefusalThrottle,
    action_for,
    older_than_wanted,
    request_id_from,
    wire_time,
)
from gamead_core.config import load_settings
from gamead_core.ids import is_ulid_id
from gamead_core.models import AdSubmission
from tests.support import SAMPLE_AD


@functools.cache
def _app() -> Any:
    """The API app of a config with an operator's token, built on first use (not at collection: once per
    pytest-xdist worker) and kept for the module."""
    settings = load_settings(None, auth={"tokens": [{"name": "op", "token": "t" * 24, "role": "operator"}]})
    return create_app(settings, "nats://127.0.0.1:1")


def _doc() -> dict[str, Any]:
    """The OpenAPI document of :func:`_app` (built once, by the app)."""
    return _app().openapi()


# --- the audit trail -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "action"), [
    ("POST", "/v1/dlq/replay", "replay"), ("POST", "/v1/dlq/purge", "purge"), ("POST", "/v1/dlq/import", "import"),
    ("POST", "/v1/jobs/01m8n9yn14df8p4qjad0cnvqad/cancel", "job.cancel"), ("POST", "/v1/scale/override", "scale.set"),
    ("DELETE", "/v1/scale/override", "scale.clear"), ("POST", "/v1/dlq/replay/x", "other"),
    ("PUT", "/v1/scale/override", "other"), ("POST", "/v1/whatever", "other"),
])
def test_an_action_is_named_from_its_request_alone(method: str, path: str, action: str) -> None:
    assert action_for(method, path) == action


def test_a_request_id_is_the_clients_only_when_it_looks_like_one() -> None:
    assert request_id_from("change-4711") == "change-4711"
    for bad in (None, "", "a b", "x" * 65, "gamead.>", "id\r\nX-Evil: 1"):
        assert is_ulid_id(request_id_from(bad))


def _record(**kw: Any) -> AuditRecord:
    base: dict[str, Any] = {"at": datetime(2026, 11, 24, 12, tzinfo=timezone.utc), "action": "purge",
                            "outcome": "accepted", "actor": "alice"}
    return AuditRecord(**{**base, **kw})


def test_filters_narrow_and_a_since_scan_stops_past_the_clock_skew() -> None:
    rec = _record(job_id="01m8n9yn14df8p4qjad0cnvqad")
    at = rec.at
    assert AuditFilter().matches(rec)
    assert AuditFilter(actor="alice", action="purge", outcome="accepted", job_id=rec.job_id).matches(rec)
    assert not AuditFilter(actor="bob").matches(rec) and not AuditFilter(outcome="refused").matches(rec)
    assert AuditFilter(since=at).matches(rec) and not AuditFilter(until=at).matches(rec)
    assert not older_than_wanted(AuditFilter(since=at + timedelta(seconds=30)), at)  # within the skew: read on
    assert older_than_wanted(AuditFilter(since=at + timedelta(seconds=61)), at)
    wire = rec.wire()
    for flt in (AuditFilter(), AuditFilter(actor="alice", job_id=rec.job_id), AuditFilter(actor="bob"),
                AuditFilter(since=at), AuditFilter(until=at), AuditFilter(outcome="refused")):
        assert flt.matches_wire(wire, wire_time(wire)) == flt.matches(rec), flt
    assert wire_time({"at": "2026-11-24T12:00:00"}) == at and wire_time({}) is None


def test_a_record_on_the_wire_is_camel_case_and_leaves_out_what_it_does_not_know() -> None:
    wire = _record(request_id="r1", ads=3).wire()
    assert wire["requestId"] == "r1" and wire["ads"] == 3 and wire["at"] == "2026-11-24T12:00:00Z"
    assert "code" not in wire and "counts" not in wire and is_ulid_id(wire["id"])


def test_refusals_are_throttled_per_caller_and_the_skipped_ones_counted() -> None:
    now = [0.0]
    throttle = RefusalThrottle(3, clock=lambda: now[0])
    assert [throttle.take("wall") for _ in range(5)] == [(True, 0), (True, 0), (True, 0), (False, 1), (False, 2)]
    assert throttle.take("alice") == (True, 0)  # another caller has its own bucket
    now[0] = 20.0  # 3 a minute: one more after 20 s, carrying the two skipped
    assert throttle.take("wall") == (True, 2)
    assert throttle.take("wall") == (False, 1)


def test_the_throttle_forgets_the_least_recent_callers_beyond_its_bound() -> None:
    throttle = RefusalThrottle(1)
    for n in range(RefusalThrottle.MAX_KEYS + 50):
        throttle.take(f"caller-{n}")
    assert len(throttle._buckets) == RefusalThrottle.MAX_KEYS

# --- the API contract -------------------------------------------------------------------------------------


def test_openapi_has_no_dangling_ref_and_one_error_schema() -> None:
    """Issue 11 item 8: ``DlqEntry`` and ``FilterBody`` were referenced and not defined."""
    assert dangling_refs(_doc()) == set()
    schemas = _doc()["components"]["schemas"]
    assert {"DlqEntry", "FilterBody", "ImportedEntry", "Error", "AuditRecord", "Whoami"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body, which gamead never sends
    assert schemas["Error"]["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"


def test_every_operation_documents_every_status_the_server_and_the_gate_can_answer() -> None:
    operations = [(p, m, op) for p, ops in _doc()["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 21
    for path, method, op in operations:
        documented = {int(s) for s in op["responses"]}
        assert error_statuses(path) <= documented, (method, path)
        for status in documented - {200, 201, 202, 204}:
            content = op["responses"][str(status)]["content"]["application/json"]["schema"]
            if path not in ("/healthz", "/readyz"):
                assert content == {"$ref": "#/components/schemas/Error"}, (method, path, status)
        assert ("security" in op) == (not path.endswith(("healthz", "readyz")))
    assert error_statuses("/healthz") == EVERY_ROUTE and error_statuses("/v1/audit") == EVERY_ROUTE | GUARDED_ROUTE
    assert {"429", "503"} <= set(_doc()["paths"]["/v1/scale/override"]["post"]["responses"])
    assert "Retry-After" in _doc()["paths"]["/v1/dlq/replay"]["post"]["responses"]["503"]["headers"]


@pytest.mark.parametrize(("path", "methods"), [
    ("/ads", ["GET", "HEAD", "OPTIONS", "POST"]), ("/ads/01m8n9yn14df8p4qjad0cnvqad", ["GET", "HEAD", "OPTIONS"]),
    ("/v1/dlq/replay", ["OPTIONS", "POST"]), ("/v1/scale/override", ["DELETE", "OPTIONS", "POST"]),
    ("/v1/audit", ["GET", "HEAD", "OPTIONS"]), ("/nowhere", ["OPTIONS"]),
])
def test_allow_lists_the_methods_of_the_resource_at_the_path(path: str, methods: list[str]) -> None:
    """``OPTIONS /ads`` said ``Allow: POST`` though ``GET /ads`` exists (issue 11 item 8)."""
    assert allowed_methods(_app(), path) == methods


def test_options_and_405_answer_with_the_right_allow_without_nats() -> None:
    open_app = create_app(load_settings(None), "nats://127.0.0.1:1")  # open mode: no token needed

    async def ask() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(open_app), base_url="http://api") as client:
            resp = await client.options("/ads")
            assert resp.status_code == 204 and resp.headers["allow"] == "GET, HEAD, OPTIONS, POST"
            resp = await client.put("/ads")
            assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD, OPTIONS, POST"
            assert resp.json()["error"]["code"] == "method_not_allowed"
            assert (await client.delete("/v1/dlq/replay")).headers["allow"] == "OPTIONS, POST"

    asyncio.run(ask())


VALID: dict[type, dict[str, Any]] = {
    AdSubmission: dict(SAMPLE_AD),
    ReplayBody: {"all": True, "limit": 10, "dryRun": True, "rate": 5, "stopOnFailureRate": 0.5},
    PurgeBody: {"filter": {"priority": 2}, "confirm": True, "limit": 10},
    OverrideBody: {"replicas": 2, "forSeconds": 60},
}


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_no_request_body_takes_a_boolean_for_a_number_or_a_string_for_either(model: type) -> None:
    """``{"replicas": false}`` was read as 0 (issue 11 item 8): every body is validated strictly."""
    parse_body(orjson.dumps(VALID[model]), model, 65536)  # the valid body passes
    flat = {k: v for k, v in VALID[model].items() if isinstance(v, (bool, int, float))}
    nested = {f"filter.{k}": v for k, v in (VALID[model].get("filter") or {}).items()}
    assert flat or nested
    for key, value in {**flat, **nested}.items():
        wrong: list[Any] = ["7"] if not isinstance(value, bool) else [1, "true"]
        if isinstance(value, int) and not isinstance(value, bool):
            wrong.append(value == 0)  # a boolean for an integer
        for bad in wrong:
            body = orjson.loads(orjson.dumps(VALID[model]))
            target, name = (body["filter"], key.split(".", 1)[1]) if key.startswith("filter.") else (body, key)
            target[name] = bad
            with pytest.raises(ApiError) as err:
                parse_body(orjson.dumps(body), model, 65536)
            assert err.value.status == 422 and err.value.details[0]["loc"] == key, (key, bad)


def test_an_import_entry_is_strict_too_and_times_must_be_iso() -> None:
    from tests.integration.dlq_lane import made_up_entry

    entry = made_up_entry("Strict")
    parse_body(orjson.dumps({"entries": [entry]}), ImportBody, 65536)
    for field, bad in (("attempts", True), ("priority", "2"), ("retryable", 0), ("deadAt", 1700000000),
                       ("deadAt", "0.5")):
        with pytest.raises(ApiError) as err:
            parse_body(orjson.dumps({"entries": [{**entry, field: bad}]}), ImportBody, 65536)
        assert err.value.status == 422 and err.value.details[0]["loc"] == f"entries.0.{field}"


def test_an_import_entry_is_held_to_the_bounds_of_the_entries_the_service_writes() -> None:
    """Reviewer V10, N2: each of these was imported (`imported 1 of 1`) into the DLQ; now 422 at its field."""
    from tests.integration.dlq_lane import made_up_entry

    entry = made_up_entry("Bounded")
    parse_body(orjson.dumps({"entries": [{**entry, "workerId": "ip-10-0-0-1.ec2.internal-4242-abcdef",
                                          "sourceSeq": 12, "errorClass": "gamead.TaskTimeout"}]}), ImportBody, 65536)
    for field, bad in (("sourceSeq", -1), ("sourceSeq", 0), ("errorClass", "E" * 10_000),
                       ("errorClass", ""), ("errorClass", "a b"),
                       ("deadAt", "9999-12-31T23:59:59Z"), ("firstFailureAt", "2999-01-01T00:00:00Z"),
                       ("submittedAt", "9999-12-31"), ("lastFailureAt", "2999-01-01T00:00:00"),
                       ("workerId", "a.b.>"), ("workerId", "w*"), ("workerId", "w 1"), ("workerId", "w" * 129),
                       ("title", "T" * 201), ("title", "Another Title"), ("traceparent", "not-a-trace")):
        with pytest.raises(ApiError) as err:
            parse_body(orjson.dumps({"entries": [{**entry, field: bad}]}), ImportBody, 65536)
        locs = [d["loc"] for d in err.value.details]
        want = "entries.0.ad" if (field, bad) == ("title", "Another Title") else f"entries.0.{field}"
        assert err.value.status == 422 and locs == [want], (field, str(bad)[:40], locs)


def test_what_the_service_writes_into_the_dlq_always_imports_again() -> None:
    """The bounds above are those of the service's own entries: an over-long error text is cut when written."""
    from gamead_core.models import MAX_ERROR_CLASS, MAX_ERROR_MESSAGE, clip_error
    from tests.integration.dlq_lane import made_up_entry

    error_class, message = clip_error("E" * 300, "x" * 9000)
    assert (len(error_class), len(message)) == (MAX_ERROR_CLASS, MAX_ERROR_MESSAGE) and message.endswith("…")
    assert clip_error("TaskTimeout", "short") == ("TaskTimeout", "short")
    written = {**made_up_entry("Long"), "errorClass": "Failure", "errorMessage": message,
               "workerId": "build-host.example.com-4242-abcdef"}
    parse_body(orjson.dumps({"entries": [written]}), ImportBody, 65536)


def test_an_older_entrys_long_error_message_imports_cut_as_the_service_cuts_it() -> None:
    """An entry an older gamead wrote kept its whole error message (9,000 characters here): its import was 422 at
    ``entries.0.errorMessage``, so that export could not be imported. Now the message is cut to 4,000 characters,
    ``…`` last, as the worker cuts what it writes; one at the bound is kept whole."""
    from gamead_core.models import MAX_ERROR_MESSAGE
    from tests.integration.dlq_lane import made_up_entry

    entry = made_up_entry("Older")
    body = parse_body(orjson.dumps({"entries": [{**entry, "errorMessage": "m" * 9000}]}), ImportBody, 65536)
    message = body.entries[0].error_message
    assert len(message) == MAX_ERROR_MESSAGE == 4000 and message == "m" * 3999 + "…"
    whole = parse_body(orjson.dumps({"entries": [{**entry, "errorMessage": "m" * 4000}]}), ImportBody, 65536)
    assert whole.entries[0].error_message == "m" * 4000


@pytest.mark.parametrize(("body", "status"), [(b"", 400), (b"[1]", 400), (b'{"title": ', 400), (b"null", 400),
                                              (b'{"title": 1}', 422)])
def test_a_body_that_is_not_a_json_object_is_400_and_a_wrong_one_422(body: bytes, status: int) -> None:
    with pytest.raises(ApiError) as err:
        parse_body(body, AdSubmission, 65536)
    assert err.value.status == status


def _items_schema(field: str) -> dict[str, Any]:
    props = _doc()["components"]["schemas"]["AdSubmission"]["properties"]
    return props[field]["items"] if "items" in props[field] else props[field]


@pytest.mark.parametrize("field, value, schema_valid", [
    # Schemathesis's find: a tag of 100 characters with a space in front (101 as sent) was accepted,
    # while the document says maxLength 100
    ("visualElements", [" " + "a" * 100], False),
    ("title", "   ", False),  # blank: the document's pattern \S refuses it, and so does the API
    ("visualElements", [" " + "a" * 99], True),  # 100 as sent: accepted, stored stripped
    ("title", "  Dragon Quest  ", True),
])
def test_an_ad_text_is_refused_by_the_api_exactly_when_the_document_refuses_it(
        field: str, value: Any, schema_valid: bool) -> None:
    import re

    schema = _items_schema(field)
    texts = value if isinstance(value, list) else [value]
    assert all(schema["minLength"] <= len(t) <= schema["maxLength"] and re.search(schema["pattern"], t)
               for t in texts) is schema_valid
    try:
        ad = AdSubmission.model_validate({**SAMPLE_AD, field: value})
    except ValueError:
        accepted = False
    else:
        accepted = True
        stored = ad.model_dump(by_alias=True)[field]
        assert stored == ([t.strip() for t in value] if isinstance(value, list) else value.strip())
    assert accepted is schema_valid
