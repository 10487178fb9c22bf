"""fixsubmit38 (attack38b F1): an NDJSON line longer than ``MAX_NDJSON_SKIP_BYTES`` (64 MiB) is one rejection, and
the lines after it, never read, are not counted ``sent``: the summary says the rest of the file was not read.

Before: ``sent: 3`` and two rejections of line 2 (``longer than 64 KiB`` and ``line 2 is longer than 64 MiB: the
rest of the file is not read``) for a file whose line 3 was never read. Real nats-server, API and ``gamead submit``;
the long line is a sparse hole (NUL bytes that cost no disk)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gamead_cli.submit.reading import MAX_NDJSON_SKIP_BYTES
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, clean_env, run_gamead, start_api

AD = json.dumps(ad("Summer Sale"))


def test_a_line_past_64_mib_is_one_rejection_and_the_lines_after_it_are_not_sent(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    path = tmp_path / "big.ndjson"
    with path.open("wb") as fh:  # line 1 an ad; line 2 64 MiB + 1 MiB of NULs (a hole); line 3 an ad
        fh.write(AD.encode() + b"\n")
        fh.seek(fh.tell() + MAX_NDJSON_SKIP_BYTES + 2**20)
        fh.write(b"\n" + AD.encode() + b"\n")
    run = run_gamead("submit", "big.ndjson", "--api", url, "-o", "json", env=clean_env(), cwd=tmp_path, timeout=180)
    summary = json.loads(run.stdout)
    figures = {k: summary.get(k) for k in ("sent", "accepted", "rejected", "rejections", "inputError", "lastSent")}
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:], figures)
    assert summary["sent"] == 2 and summary["accepted"] == 1, figures  # lines 1 and 2 read; line 3 never
    assert summary["rejectedByCode"] == {"invalid_json": 1}, figures
    [rejection] = summary["rejections"]
    assert rejection["where"] == "big.ndjson:2" and "longer than 64 KiB" in rejection["message"], figures
    assert summary["inputError"] == "line 2 is longer than 64 MiB: the rest of the file is not read", figures
    assert "the ads after it were not read" in run.stderr, run.stderr[-2000:]
