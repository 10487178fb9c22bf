"""tui42 F4: ``gamead dlq list`` of a full DLQ (``dlq.max_msgs`` reached: every new dead-lettering refused, failing
ads waiting queued) said ``2 shown of 2 matching (2 in the DLQ)``, and ``-o json`` (``GET /v1/dlq``) had no
``full``: an operator looking at the DLQ did not learn it was full. Now ``GET /v1/dlq`` carries ``maxMsgs`` and
``full`` (as ``/v1/stats`` ``dlq``), and the text says ``(2 in the DLQ: full)`` and a line of what that does and what
to do. Without the fix: 2 failed (no ``full`` in the text nor in the JSON); with it: 2 passed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import COMMON, Lane, made_up_entry
from tests.support import Proc, start_api

pytestmark = pytest.mark.usefixtures("isolated_env")

LIMIT = 2  #: dlq.max_msgs of this module's API


@pytest.fixture
def small_dlq(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> Iterator[Lane]:
    """An API whose DLQ holds at most :data:`LIMIT` entries, with one imported (room for one more)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **{**COMMON, "GAMEAD_DLQ__MAX_MSGS": str(LIMIT)})
    procs.append(api)
    lane = Lane(server, url, tmp_path, procs)
    assert lane.run_job("/v1/dlq/import", {"entries": [made_up_entry("Dead One")]})["state"] == "succeeded"
    yield lane
    lane.http.close()


def _list(lane: Lane, *args: str) -> Any:
    result = CliRunner().invoke(app, ["dlq", "list", "--api", lane.url, *args])
    assert result.exit_code == 0, result.output
    return result


def test_dlq_list_says_the_dlq_is_full_in_its_text_and_its_json(small_dlq: Lane) -> None:
    room = _list(small_dlq)
    assert "1 shown of 1 matching (1 in the DLQ)" in " ".join(room.stdout.split()), room.stdout
    assert "full" not in room.stdout, room.stdout
    as_json = json.loads(_list(small_dlq, "-o", "json").stdout)
    assert as_json["full"] is False and as_json["maxMsgs"] == LIMIT, as_json

    assert small_dlq.run_job("/v1/dlq/import", {"entries": [made_up_entry("Dead Two")]})["state"] == "succeeded"
    full = " ".join(_list(small_dlq).stdout.split())
    print(full)
    assert "2 shown of 2 matching (2 in the DLQ: full)" in full, full  # before: "(2 in the DLQ)", nothing more
    assert "the DLQ is full (2 of dlq.max_msgs 2)" in full and "wait queued" in full, full
    assert "gamead dlq purge" in full and "raise dlq.max_msgs" in full, full  # what to do
    as_json = json.loads(_list(small_dlq, "-o", "json").stdout)
    assert as_json["full"] is True and as_json["maxMsgs"] == LIMIT and as_json["inDlq"] == LIMIT, as_json


def test_a_filter_matching_nothing_in_a_full_dlq_still_says_it_is_full(small_dlq: Lane) -> None:
    assert small_dlq.run_job("/v1/dlq/import", {"entries": [made_up_entry("Dead Two")]})["state"] == "succeeded"
    none = " ".join(_list(small_dlq, "--error-class", "NoSuchError").stdout.split())
    print(none)
    assert "2 in the DLQ: full" in none and "the DLQ is full (2 of dlq.max_msgs 2)" in none, none
