"""A query parameter a route does not declare is refused on a real API (attack42a F2).

Before: ``GET /ads?statu=completed``, ``GET /v1/dlq?errorclass=Nope``, ``GET /ads?priority[]=1`` were 200 with
every ad or entry (the misspelt filter ignored), ``GET /v1/dlq?error_class=x&errorClass=y`` used ``y`` and dropped
``x``, and a purge's dry run with a filter in its query counted the whole DLQ (the query ignored, the body's
``all`` acted on). Now each is 400 with a stable code naming the parameter. Without the fix (the gate's
``query_refusal`` back to the repeat check alone): five of the 6 refusals below are 200 (four reads and the purge's dry
run, ``matched`` over the whole DLQ) and 202 (``POST /ads?priorty=1`` queued at the body's priority); without the
route's alias check the two names are 200."""

from __future__ import annotations


import httpx
import pytest

from tests.support import ad

pytestmark = pytest.mark.usefixtures("stack")


@pytest.mark.parametrize(("method", "path", "body", "parameter"), [
    ("GET", "/ads?statu=completed&limit=1", None, "statu"),
    ("GET", "/ads?priority[]=1", None, "priority[]"),
    ("GET", "/v1/dlq?errorclass=Nope", None, "errorclass"),
    ("GET", "/v1/audit?acter=x", None, "acter"),
    ("POST", "/v1/dlq/purge?errorClass=Nope", {"all": True, "dryRun": True}, "errorClass"),
    ("POST", "/ads?priorty=1", "ad", "priorty"),
])
def test_a_parameter_the_route_does_not_take_is_refused_naming_it(client: httpx.Client, method: str, path: str,
                                                                  body: object, parameter: str) -> None:
    resp = client.request(method, path, json=ad("typo") if body == "ad" else body)
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    error = resp.json()["error"]
    assert error["code"] == "unknown_query_parameter" and error["details"]["parameter"] == parameter, error
    assert repr(parameter) in error["message"]
    route = path.split("?")[0]
    known = client.get("/openapi.json").json()["paths"][route][method.lower()].get("parameters", [])
    assert {p["name"] for p in known if p["in"] == "query"} <= set(error["details"]["known"])


def test_one_parameter_under_its_two_names_is_refused(client: httpx.Client) -> None:
    both = client.get("/v1/dlq", params={"error_class": "x", "errorClass": "y", "limit": 1})
    assert both.status_code == 400, both.text[:300]
    error = both.json()["error"]
    assert error["code"] == "duplicate_query_parameter" and set(error["details"]["names"]) == {"errorClass",
                                                                                               "error_class"}
    for name in ("errorClass", "error_class"):  # either alone still reads
        assert client.get("/v1/dlq", params={name: "x", "limit": 1}).status_code == 200


def test_the_routes_own_parameters_are_still_served(client: httpx.Client) -> None:
    assert client.get("/ads", params={"status": "completed", "priority": 1, "limit": 1}).status_code == 200
    assert client.head("/ads?statu=completed").status_code == 400
    assert client.get("/healthz").status_code == 200
