"""attack30c F10: the keys `gamead submit --idempotency-key KEY` gives many ads go by position (KEY-<input index>).
Deleting a rejected line and sending again with the same key shifts them: the refused ads' lines now say the
likely cause (the input changed since the run with this key) and the summary says once how to settle it — which
works: the input put back (the bad line replaced by {}) and sent again queues nothing twice. Live API."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from tests.cli.test_cli_errors import gamead
from tests.support import RPG_AD

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_deleted_line_names_the_likely_cause_and_the_summary_how_to_settle(tmp_path: Path, api_url: str) -> None:
    key, tag = f"shift-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:8]
    lines = [json.dumps({**RPG_AD, "title": f"Resume Shift {tag} {n}"}) for n in range(10)]
    lines[2] = "this line is not JSON"
    ads = tmp_path / "shift.ndjson"
    ads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = gamead("submit", "shift.ndjson", "--idempotency-key", key, "--api", api_url, "-o", "json", cwd=tmp_path)
    assert json.loads(first.stdout)["accepted"] == 9, first.stderr

    ads.write_text("\n".join(lines[:2] + lines[3:]) + "\n", encoding="utf-8")  # the bad line deleted
    shifted = gamead("submit", "shift.ndjson", "--idempotency-key", key, "--api", api_url, cwd=tmp_path)
    err = _ANSI.sub("", shifted.stderr)
    assert shifted.returncode == 1, err
    reused = [line for line in err.splitlines() if ": idempotency_key_reused: " in line]
    assert len(reused) == 6, err
    assert reused[0].startswith("shift.ndjson:4: ") and f"{key}-3" in reused[0], reused[0]
    assert all("likely cause: the input changed since the run with this key" in line for line in reused), err
    assert all(f"keys are {key}-<index of the ad in the input" in line for line in reused), err
    assert err.count("to settle a run with --idempotency-key") == 1, err  # said once, not per ad
    assert "put the input back as it was for that run" in err, err

    lines[2] = "{}"  # as the advice says: the bad line replaced, its position kept
    ads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settled = gamead("submit", "shift.ndjson", "--idempotency-key", key, "--api", api_url, "-o", "json",
                     cwd=tmp_path)
    summary = json.loads(settled.stdout)
    assert summary["duplicates"] == 9 and summary["accepted"] == 0, summary  # none queued anew
    assert list(summary["rejectedByCode"]) == ["validation_failed"] and "keyAdvice" not in summary, summary
