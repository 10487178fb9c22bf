"""``worker.faults.match`` is an RE2 pattern under the DLQ ``--message`` filter's bounds, checked when the settings
are built (attack24 #2): it was a Python ``re`` pattern searched on the worker's event loop, so ``(a+)+$`` blocked a
worker until it was killed as wedged, and ``(`` passed ``gamead config show`` and dead-lettered every ad."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gamead_core.config import FaultSettings, load_settings
from gamead_core.errors import ConfigError
from gamead_core.worker.faults import pick_fault
from tests.support import drop_gamead_env


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(", "not a valid RE2 regular expression: missing )"),  # passed, then every ad died of "missing )"
    ("(?<=a)b", "not a valid RE2 regular expression"),  # look-behind: Python's re only
    (r"(a)\1", "not a valid RE2 regular expression"),  # back-reference: Python's re only
    pytest.param("a" * 1001, "the limit is 1,000", id="1001-characters"),
    (".{1,1000}x", "RE2 instructions; the limit is 5,000"),  # the DLQ filter's program bound
    ("((((.*){1,1000}){1,1000}){1,1000})", ""),  # past RE2's memory bound, or its repeat limit
])
def test_a_pattern_re2_refuses_or_too_costly_is_one_config_error_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch, pattern: str, reason: str) -> None:
    monkeypatch.setenv("GAMEAD_WORKER__FAULTS__MATCH", pattern)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "worker.faults.match (GAMEAD_WORKER__FAULTS__MATCH=" in message and reason in message


def test_the_same_pattern_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("worker:\n  faults:\n    rate: 1\n    match: '(?<=Sky) Saga'\n")
    with pytest.raises(ConfigError, match=r"worker\.faults\.match \(.*config\.yaml.*\).*not a valid RE2"):
        load_settings(cfg)


def test_the_drills_catastrophic_pattern_is_searched_in_linear_time() -> None:
    """``(a+)+$`` on 34 a's and a ``!`` backtracks ~2^34 steps in Python's ``re`` (a worker killed 6 times as
    wedged). Run in a child process with a deadline, so that a regression fails instead of hanging the suite."""
    code = ("from gamead_core.config import FaultSettings\n"
            "from gamead_core.worker.faults import pick_fault\n"
            "s = FaultSettings(rate=1, match='(a+)+$', mode='permanent')\n"
            "assert pick_fault(s, 'a' * 34 + '!', 'ad1', 1) is None\n"
            "assert pick_fault(s, 'a' * 34, 'ad1', 1) is not None\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_title_is_searched_with_re2_syntax() -> None:
    r"""``\pL`` (a Unicode letter) is RE2 syntax that Python's ``re`` refuses ("bad escape \p")."""
    on = FaultSettings(rate=1, match=r"^\pL+ Saga$", mode="permanent")
    assert pick_fault(on, "Sky Saga", "a", 1) == pick_fault(on, "Ünïcode Saga", "b", 1) is not None
    assert pick_fault(on, "Sky Saga 2", "a", 1) is None
    assert pick_fault(FaultSettings(rate=1, match=""), "anything", "a", 1) is not None  # empty = every ad


def test_the_pattern_is_compiled_once_not_per_ad(monkeypatch: pytest.MonkeyPatch) -> None:
    on = FaultSettings(rate=1, match="^Poison")

    def compile_again(pattern: str) -> None:
        raise AssertionError(f"{pattern!r} compiled again at an ad")

    monkeypatch.setattr("gamead_core.dlq_pattern.compile_pattern", compile_again)
    monkeypatch.setattr("gamead_core.config.faults.compile_pattern", compile_again)
    monkeypatch.setattr("gamead_core.dlq_pattern._compile", compile_again)
    assert [pick_fault(on, t, "a", 1) is not None for t in ("Poison Pill", "Fine Ad") * 50] == [True, False] * 50


def test_a_copy_with_another_match_fails_the_ads_its_own_pattern_matches() -> None:
    """The pattern was compiled once, in ``model_post_init``, and ``model_copy(update=…)`` (which runs no
    post-init) kept the original's: a drill's copy with ``match="^Boom"`` still failed the original's titles and
    spared its own. Now the compiled pattern follows ``match``, however the settings object came to hold it."""
    original = FaultSettings(rate=1.0, match="^Keep")
    copy = original.model_copy(update={"match": "^Boom"})
    assert copy.title_matches("Boom sale") and not copy.title_matches("Keep calm")
    assert original.title_matches("Keep calm") and not original.title_matches("Boom sale")
    every = original.model_copy(update={"match": None})
    assert every.title_matches("anything at all")
