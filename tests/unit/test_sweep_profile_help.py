"""newcomer46: ``benchmarks/sweep_profile.py --help`` was its usage error (exit 1) where every other benchmark
answers ``--help`` with its help, exit 0. Now it prints its usage and what it does, exit 0; without ``--out`` it
is still the one usage line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _sweep_profile(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(_BENCH))  # as the script itself does: it imports bench_pipeline and bench_sweep
    spec = importlib.util.spec_from_file_location("sweep_profile", _BENCH / "sweep_profile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_prints_the_usage_and_what_it_measures(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert _sweep_profile(monkeypatch).main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sweep_profile.py --out FILE") and "Where the API's CPU per ad goes" in out


def test_without_out_it_is_the_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="usage: sweep_profile.py --out FILE"):
        _sweep_profile(monkeypatch).main(["--rates", "1000"])


def test_help_names_the_worker_flag(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """cpu54: ``--worker`` samples the first worker instead of the API; the usage says so."""
    assert _sweep_profile(monkeypatch).main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "[--worker]" in out and "the first worker is sampled" in out
