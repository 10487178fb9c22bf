"""Two leftovers of operator output.

1. ``gamead scale status`` after an API restart showed the leader's rates (submitted ads/s, per worker) as if over
   the usual minute while its sampler had seconds of samples; ``gamead top`` already said ``last 11 s``. Now the
   status names the short span (``rates over  last 4 s``) and ``-o json`` has it (``observed.windowSeconds``).
2. Piped (``gamead … | grep``), rich wrapped prose at 80 columns, so a sentence was cut over two lines. Now each
   line of prose is printed whole when stdout is not a terminal (``COLUMNS``, when set, is the width again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gamead_cli.formats import short_window
from gamead_cli.main import app
from gamead_core.embedded import EmbeddedNats
from gamead_core.rate_window import RATE_WINDOW_SECONDS, window_words
from gamead_core.stats.rates import RATE_WINDOW
from tests.support import Proc, start_api, wait_for

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def fresh_api(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """An API started now on its own NATS, leading the autoscaler (backend none) with a decision recorded whose
    rates are known (two samples): its sampler is seconds old, far from a minute."""
    monkeypatch.delenv("COLUMNS", raising=False)  # the pipe as a script sees it: no width chosen
    proc, url = start_api(fresh_nats().url, tmp_path, GAMEAD_AUTOSCALER__INTERVAL="0.5")
    procs.append(proc)

    def measured() -> dict[str, Any] | None:
        doc = httpx.get(f"{url}/v1/scale", timeout=5).json()
        return doc if (doc.get("observed") or {}).get("windowSeconds") else None

    wait_for(measured, timeout=30, interval=0.1, what="a decision whose rates have a window")
    return url


def test_scale_status_names_the_short_span_of_a_restarted_leaders_rates(runner: CliRunner, fresh_api: str) -> None:
    doc = runner.invoke(app, ["scale", "status", "-o", "json", "--api", fresh_api])
    assert doc.exit_code == 0, doc.output
    window = json.loads(doc.stdout)["observed"]["windowSeconds"]
    assert 0 < window < 60  # seconds: what the rates were divided by, not the minute

    table = runner.invoke(app, ["scale", "status", "--api", fresh_api])
    assert table.exit_code == 0, table.output
    said = re.search(r"^rates over +last (\d+) s \(under a minute of samples: the leader restarted\) *$", table.stdout,
                     re.M)
    assert said, table.stdout
    assert 0 < int(said[1]) < 60


def test_one_wording_for_top_and_scale_status() -> None:
    assert RATE_WINDOW_SECONDS == RATE_WINDOW
    assert short_window(11.2) == window_words(11.2) == "last 11 s"  # gamead top: "throughput · last 11 s · …"
    assert short_window(60.0) is None and window_words(60.0) == "last minute"
    assert short_window(None) is None and window_words(None) == "last minute"


def test_piped_prose_is_one_line_and_columns_is_the_width_when_set(
        runner: CliRunner, fresh_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sentence = re.compile(r"^override: 100 workers until \d\d:\d\d:\d\d UTC \(no override was set before\) — "
                          r"override 100 clamped to 20 \(max_replicas\)$", re.M)
    piped = runner.invoke(app, ["scale", "set", "100", "--for", "1m", "--api", fresh_api])  # not a terminal
    assert piped.exit_code == 0, piped.output
    found = sentence.search(piped.stdout)
    assert found and len(found[0]) > 80, piped.stdout  # longer than rich's 80 columns, and whole

    monkeypatch.setenv("COLUMNS", "60")
    narrow = runner.invoke(app, ["scale", "set", "100", "--for", "1m", "--api", fresh_api])
    assert narrow.exit_code == 0, narrow.output
    first = narrow.stdout.splitlines()[0]
    assert first.startswith("override: 100 workers until") and len(first) <= 60, narrow.stdout
