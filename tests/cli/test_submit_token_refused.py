"""A bulk ``gamead submit`` whose token the API refuses (newcomer57): without ``GAMEAD_TOKEN`` (401) or with a
viewer's (403), ``gamead submit --count 50`` against a stack with ``auth.tokens`` printed a summary ``rejected 50 ads
(unauthenticated 50)`` and 20 lines ``ad N: unauthenticated: an API token is required …`` then ``… and 30 more
rejected``, and sent every batch of the run, each refused alike. The token is the run's, not an ad's: the sending
stops at the first refusal and the run ends as any verb refused its token does, one red line, exit 1 (``-o json``:
the error document); a token that may submit queues them all."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, clean_env, run_gamead, start_api

OPERATOR, VIEWER = "op-" + "a1b2c3d4" * 4, "vw-" + "e5f6a7b8" * 4
TOKENS = json.dumps([{"name": "ops", "token": OPERATOR, "role": "operator"},
                     {"name": "eve", "token": VIEWER, "role": "viewer"}])


def test_a_refused_token_stops_a_bulk_submit_with_one_line(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    api, url = start_api(fresh_nats().url, tmp_path, GAMEAD_AUTH__TOKENS=TOKENS)
    procs.append(api)
    run = ("submit", "--count", "50", "--batch-size", "10", "--api", url)

    nobody = run_gamead(*run, env=clean_env())
    assert nobody.returncode == 1 and nobody.stdout == "", nobody.stdout
    assert nobody.stderr.count("\n") == 1 and "an API token is required" in nobody.stderr, nobody.stderr
    assert "GAMEAD_TOKEN" in nobody.stderr

    viewer = run_gamead(*run, "-o", "json", env=clean_env(GAMEAD_TOKEN=VIEWER))
    assert viewer.returncode == 1, viewer.stderr
    error = json.loads(viewer.stdout)["error"]
    assert error["code"] == "forbidden" and error["exitCode"] == 1 and "role 'viewer'" in error["message"]
    assert viewer.stderr.count("\n") == 1 and "ad 1:" not in viewer.stderr, viewer.stderr

    operator = run_gamead(*run, "-o", "json", env=clean_env(GAMEAD_TOKEN=OPERATOR))
    assert operator.returncode == 0, operator.stderr
    assert {k: json.loads(operator.stdout)[k] for k in ("sent", "accepted", "rejected")} == \
        {"sent": 50, "accepted": 50, "rejected": 0}
