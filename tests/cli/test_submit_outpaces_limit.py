"""attack46 F2: a bulk submit faster than the API's rate limit ended with ads rejected ``rate_limited``, exit 1
(`gamead submit --count 4000 --rate 1000` over `ratelimit.rate: 300`: 58 rejected): the ads a batch's answer
refused for want of tokens were sent again only within ``client.retry_for`` of their chunk's start, while the run's
other batches took the tokens as they came. Now they are sent again within ``client.retry_for`` of the run's last
ad taken: the run slows to the limit and every ad is queued. A real API and NATS, the limit 10 ads/s."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api

LIMITED = {"GAMEAD_RATELIMIT__ENABLED": "true", "GAMEAD_RATELIMIT__RATE": "10", "GAMEAD_RATELIMIT__BURST": "10"}


def test_a_run_past_the_rate_limit_slows_to_it_and_queues_every_ad(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = start_api(fresh_nats().url, tmp_path, **LIMITED)
    procs.append(api)
    # 60 ads in batches of 5 at 1,000/s: ~6 s at the API's 10/s, three times each chunk's 2 s of resends
    cli = CliRunner().invoke(app, ["submit", "--count", "60", "--rate", "1000", "--batch-size", "5", "--api", url,
                                   "-o", "json"], env={"GAMEAD_CLIENT__RETRY_FOR": "2"})
    summary = json.loads(cli.stdout)
    assert cli.exit_code == 0, cli.output
    assert (summary["accepted"], summary["rejectedByCode"], summary["notSent"]) == (60, {}, 0), summary
    assert len(set(summary["acceptedIds"])) == 60, summary
