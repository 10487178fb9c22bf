"""attack38b F7: a DLQ read cut short says which bound cut it. ``gamead dlq list --message '.{1,500}ZZ'`` over 1,992
long entries said "read 3 entries, then stopped (scan limit)" when ``dlq.scan_limit`` was 100,000 and every stop came
from ``dlq.scan_time`` (2 s): the operator was sent to the wrong setting. Now the API's answer says ``stoppedAt``
and the CLI names it, for a list page and for a replay's dry run alike."""

from __future__ import annotations

import httpx

from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture
from tests.support import clean_env, run_gamead


def test_a_dlq_read_cut_short_names_the_bound_that_cut_it(lane: Lane) -> None:
    assert lane.run_job("/v1/dlq/import", {"entries": [made_up_entry(f"Dead {i}") for i in range(20)]})[
        "counts"]["imported"] == 20
    for env, bound in (({"GAMEAD_DLQ__SCAN_LIMIT": "10"}, "dlq.scan_limit"),
                       ({"GAMEAD_DLQ__SCAN_TIME": "0.001"}, "dlq.scan_time")):
        _, url = lane.api(**env)
        page = httpx.get(f"{url}/v1/dlq", params={"errorClass": "Nope"}, timeout=30).json()
        dry = httpx.post(f"{url}/v1/dlq/replay", json={"filter": {"errorClass": "Nope"}, "dryRun": True},
                         timeout=30).json()
        listed = run_gamead("dlq", "list", "--error-class", "Nope", "--api", url, env=clean_env())
        print(page, dry, listed.stdout, listed.stderr, sep="\n")
        assert page["complete"] is False and page["stoppedAt"] == bound
        assert dry["complete"] is False and dry["stoppedAt"] == bound
        said = " ".join(listed.stdout.split())  # as read, however the terminal's width wrapped it
        assert listed.returncode == 0 and f"then stopped at {bound}" in said  # before: "(scan limit)"
    whole = httpx.get(f"{lane.url}/v1/dlq", params={"errorClass": "Nope"}, timeout=30).json()
    assert whole["complete"] is True and whole["stoppedAt"] is None
