"""attack46 F7: two ``gamead dlq import`` at once under the API's rate limit (one client address, one ``/v1/*``
bucket) each ended exit 1 on the 429s the other's requests caused, a job started and left unfollowed: the follow
stream of each job took a 429 as the end (:mod:`gamead_cli.streaming` sent no request again after an answer).
Now a 429 is sent again on every path while the API keeps answering (:mod:`gamead_cli.pacing`): both imports end
exit 0 and every line is imported. A real API and NATS; the admin bucket 4/s, burst 4, ``client.retry_for`` 2 s."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import gamead_run
from tests.front_door import FrontDoor
from tests.integration.dlq_lane import COMMON, made_up_entry
from tests.support import Proc, clean_env, gamead_argv, start_api

LIMITED = {"GAMEAD_RATELIMIT__ENABLED": "true", "GAMEAD_RATELIMIT__ADMIN__RATE": "4",
           "GAMEAD_RATELIMIT__ADMIN__BURST": "4"}
LINES = 300  #: ~5 import batches a file: ~15 requests each import, ~8 s of the two at 4/s


def _import(file: Path, url: str) -> subprocess.CompletedProcess[str]:
    return gamead_run(gamead_argv("dlq", "import", str(file), "--api", url, "-o", "json"),
                      env=clean_env(GAMEAD_CLIENT__RETRY_FOR="2"), capture_output=True, text=True, timeout=300)


def test_two_imports_sharing_one_rate_limit_both_end_and_account_for_every_line(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = start_api(fresh_nats().url, tmp_path, **COMMON, **LIMITED)
    procs.append(api)
    files = []
    for name in ("a", "b"):
        files.append(tmp_path / f"{name}.ndjson")
        files[-1].write_text("".join(json.dumps(made_up_entry(f"Shared {name} {i}")) + "\n" for i in range(LINES)))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda f: _import(f, url), files))
    for result in results:
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert (body["lines"], body["imported"], body["skipped"]) == (LINES, LINES, 0), body


def test_an_api_that_refuses_every_request_429_still_ends_the_command(tmp_path: Path) -> None:
    """The bound: a limiter in front that answers every request 429 (``Retry-After: 1``) ends ``gamead ads list``
    after 6 × ``client.retry_for`` (here 0.5 s: 3 s), its last answer said in one line, exit 1."""
    door = FrontDoor(None, status=429, retry_after=1).start()
    try:
        result = gamead_run(gamead_argv("ads", "list", "--api", door.url),
                            env=clean_env(GAMEAD_CLIENT__RETRY_FOR="0.5"), capture_output=True, text=True, timeout=120)
    finally:
        door.stop()
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: API answered HTTP 429 to GET /ads: <html>"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and door.answered >= 2, (door.answered, result.stderr)
