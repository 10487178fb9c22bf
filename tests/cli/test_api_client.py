"""``ApiClient``: httpx errors and API error bodies become gamead errors at one boundary."""

from __future__ import annotations

import httpx
import pytest

from gamead_cli.client import ApiClient
from gamead_core.config import ClientSettings
from gamead_core.errors import ApiClientError, ApiUnreachable, NotFound


def client_for(handler: httpx.MockTransport | None = None, **kw: object) -> ApiClient:
    return ApiClient("http://api.test", transport=handler, **kw)  # type: ignore[arg-type]


def answering(status: int, body: object = None, *, text: str | None = None, headers: dict | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":  # the client asks it after a 404: is this a gamead API?
            return httpx.Response(200, json={"status": "ok", "nats": None})
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handler)


def test_submit_sends_body_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "a1", "status": "queued", "priority": 3, "duplicate": False,
                                         "submittedAt": "2026-01-01T00:00:00Z"})

    client = client_for(httpx.MockTransport(handler), token="s3cret")
    body = client.submit({"title": "t"}, idempotency_key="k-1")
    assert body["id"] == "a1"
    assert seen[0].method == "POST" and seen[0].url.path == "/ads"
    assert seen[0].headers["Idempotency-Key"] == "k-1"
    assert seen[0].headers["Authorization"] == "Bearer s3cret"


def test_list_ads_params() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "count": 0, "total": 0, "scanned": 0, "complete": True})

    client_for(httpx.MockTransport(handler)).list_ads(status="failed", priority=2, limit=5)
    assert dict(seen[0].url.params) == {"status": "failed", "priority": "2", "limit": "5"}


def test_404_is_not_found() -> None:
    body = {"error": {"code": "not_found", "message": "no ad with id x", "details": None}}
    with pytest.raises(NotFound, match="no ad with id x"):
        client_for(answering(404, body)).get_ad("x")


def test_a_404_keeps_the_apis_own_code() -> None:
    """probe49: `gamead workers quiet local-9 -o json` printed `"code": "not_found"`, the API's being
    `worker_not_live` (README's error table): the CLI kept the class (exit 4) but dropped the code."""
    body = {"error": {"code": "worker_not_live", "message": "worker local-9 is not live: …",
                      "details": {"workerId": "local-9"}}}
    with pytest.raises(NotFound) as caught:
        client_for(answering(404, body)).request("POST", "/v1/workers/local-9/quiet")
    assert caught.value.code == "worker_not_live" and caught.value.details == {"workerId": "local-9"}
    with pytest.raises(NotFound) as plain:
        client_for(answering(404, {"error": {"code": "not_found", "message": "no ad with id x"}})).get_ad("x")
    assert plain.value.code == "not_found"


def test_404_from_something_that_is_not_gamead_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    with pytest.raises(ApiUnreachable, match="no gamead API at http://api.test"):
        client_for(httpx.MockTransport(handler)).get_ad("x")


def test_a_non_json_200_from_something_that_is_not_gamead_is_unreachable() -> None:
    """A newcomer's finding: `gamead workers --api` at a worker's metrics port (text, HTTP 200) exited 1 with
    "non-JSON body"; the README's exit code for "--api is not a gamead API" is 3 (ApiUnreachable)."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="# HELP gamead_worker_busy_slots ...\n")

    with pytest.raises(ApiUnreachable, match="no gamead API at http://api.test: GET /v1/workers answered a non-JSON"):
        client_for(httpx.MockTransport(handler)).request("GET", "/v1/workers")
    with pytest.raises(ApiClientError, match="non-JSON body"):  # a gamead API that answered garbage: a client error
        client_for(answering(200, text="not json")).request("GET", "/v1/workers")


def test_422_names_the_fields() -> None:
    body = {
        "error": {
            "code": "validation_failed",
            "message": "the ad is invalid",
            "details": [
                {"loc": "targetAudience.0", "msg": "too long"},
                {"loc": ["duration"], "msg": "too small"},
            ],
        }
    }
    with pytest.raises(ApiClientError) as info:
        client_for(answering(422, body)).submit({})
    err = info.value
    assert err.status == 422 and err.code == "validation_failed"
    assert "targetAudience.0: too long" in err.message and "duration: too small" in err.message
    assert "validation_failed" in err.message
    assert err.details == body["error"]["details"]


def test_422_fields_already_in_the_message_are_not_repeated() -> None:
    details = [{"loc": "limit", "msg": "too big"}]
    body = {"error": {"code": "validation_failed", "message": "invalid: limit: too big", "details": details}}
    with pytest.raises(ApiClientError) as info:
        client_for(answering(422, body)).list_ads()
    assert info.value.message.count("limit: too big") == 1


def test_503_says_the_wait_once() -> None:
    body = {"error": {"code": "queue_unavailable", "message": "queue down", "details": None}}
    with pytest.raises(ApiClientError, match=r"^queue down \[queue_unavailable\]; try again in 2\.0s$") as info:
        client_for(answering(503, body, headers={"Retry-After": "2"})).submit({})
    assert not isinstance(info.value, ApiUnreachable)
    assert info.value.code == "queue_unavailable"


def test_non_json_error_body_keeps_the_status() -> None:
    with pytest.raises(ApiClientError, match="HTTP 502") as info:
        client_for(answering(502, text="<html>Bad Gateway</html>")).list_ads()
    assert info.value.status == 502


def test_non_json_success_body_is_an_error() -> None:
    with pytest.raises(ApiClientError, match="non-JSON"):
        client_for(answering(200, text="hello")).list_ads()


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ConnectTimeout("timed out"), "connect timed out"),
        (httpx.ReadTimeout("timed out"), "no answer within"),
    ],
)
def test_transport_errors_are_unreachable(exc: Exception, cause: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ApiUnreachable) as info:
        client_for(httpx.MockTransport(handler)).get_ad("x")
    assert "http://api.test" in info.value.message and cause in info.value.message
    assert "GAMEAD_API_URL" in info.value.message
    assert info.value.__cause__ is exc


def test_from_settings_uses_url_token_timeout() -> None:
    settings = ClientSettings(api_url="http://h:1/", token="tok", timeout=3.5)  # type: ignore[arg-type]
    client = ApiClient.from_settings(settings)
    assert client.api_url == "http://h:1" and client.timeout == 3.5
    assert client._http.headers["Authorization"] == "Bearer tok"


def test_bad_url_scheme_is_a_client_error() -> None:
    with pytest.raises(ApiClientError, match="invalid API URL"):
        ApiClient("ftp://x").get_ad("a")
