"""An API error's message that names an API path to look at is said to a CLI user as the gamead command that shows
the same (leftout59: ``gamead doctor --repair`` during another repair said ``follow it at /v1/jobs/ID``; a submit
NATS did not answer said ``GET /ads/ID tells``), with the flags that reach the same API; an API client keeps the
API's words."""

from __future__ import annotations

import re

import httpx
import pytest

from gamead_cli.api_errors import error_from_response
from gamead_core.api.batch_keyed import unexpected
from gamead_core.errors import GameadError, maybe_queued

AGAIN = " --api http://127.0.0.1:9"


def _red_line(status: int, error: GameadError) -> str:
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    request = httpx.Request("POST", "http://127.0.0.1:9/ads")
    return error_from_response(httpx.Response(status, json=body, request=request), AGAIN).message


@pytest.mark.parametrize(("status", "error", "command"), [
    (503, maybe_queued("01m8zzzzzzzzzzzzzzzzzzzzzz", keyed=False), "ads get 01m8zzzzzzzzzzzzzzzzzzzzzz" + AGAIN),
    (500, unexpected(3, "01m9zzzzzzzzzzzzzzzzzzzzzz"), "ads get 01m9zzzzzzzzzzzzzzzzzzzzzz" + AGAIN),
])
def test_a_path_to_look_at_is_named_as_the_command(status: int, error: GameadError, command: str) -> None:
    assert re.search(r"/v1/|GET /|/ads/", error.message), error.message  # the API's words name the path
    line = _red_line(status, error)
    assert command in line and not re.search(r"/v1/|GET /|(?<!/)/ads/", line.replace("http://", "")), line


def test_a_path_with_no_command_and_a_url_stay_as_they_are() -> None:
    error = GameadError("POST /ads/batch holds at most 500 ads; see http://h:1/ads/x")
    assert _red_line(422, error).startswith("POST /ads/batch holds at most 500 ads; see http://h:1/ads/x")


def test_a_bulk_submit_s_rejection_names_the_command_too() -> None:
    """A keyed ad of a batch the server failed on (``internal_error``, per ad) said ``GET /ads/ID tells`` in the
    run's ``FILE:LINE: code: message`` list and ``-o json`` items."""
    from gamead_cli.submit.tally import Tally

    tally = Tally(keep_items=True, ids_kept=10, idempotency_key="run-1", again=AGAIN)
    error = unexpected(0, "01m9zzzzzzzzzzzzzzzzzzzzzz")
    tally.settle(0, "ads.ndjson:1", {"error": {"code": error.code, "message": error.message,
                                              "details": error.details}})
    said = tally.listed[0]["message"]
    assert "ads get 01m9zzzzzzzzzzzzzzzzzzzzzz" + AGAIN in said and "GET /ads/" not in said, said
