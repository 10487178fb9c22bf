"""The xdist controller writes pytest's rewritten bytecode once, before the workers start (tests/prewarm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.assertion.rewrite import _read_pyc

from tests import prewarm


def _tree(root: Path) -> None:
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_one.py").write_text("def test_one():\n    x = 1\n    assert x == 2\n")
    (root / "tests" / "conftest.py").write_text("X = 1\n")
    (root / "tests" / "helper.py").write_text("Y = 2\n")
    (root / "tests" / "plugin.py").write_text("Z = 3\n")


def test_the_rewritten_modules_are_the_ones_pytest_rewrites(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = prewarm.rewritten_targets(tmp_path, ["test_*.py"], {"tests.plugin", "schemathesis"})
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "tests/conftest.py", "tests/plugin.py", "tests/unit/test_one.py"]


def test_a_stale_module_is_rewritten_once_and_pytest_reads_the_cache_back(tmp_path: Path,
                                                                          request: pytest.FixtureRequest) -> None:
    """Figure: with nothing cached, ``test_one.py``'s rewritten bytecode is written by prewarm, and pytest's own
    reader takes it (the asserts rewritten: ``@py_assert`` names); a second prewarm finds all fresh."""
    _tree(tmp_path)
    source = tmp_path / "tests" / "unit" / "test_one.py"
    assert not prewarm.fresh(source)
    stale = prewarm.prewarm(request.config, tmp_path, cores=1)
    assert source in stale and prewarm.fresh(source)
    code = _read_pyc(source, prewarm.cached(source))
    assert code is not None
    assert any(name.startswith("@py_assert") for const in code.co_consts if hasattr(const, "co_varnames")
               for name in const.co_varnames)
    assert prewarm.prewarm(request.config, tmp_path, cores=1) == []
    source.write_text(source.read_text() + "\n")  # changed: stale again
    assert not prewarm.fresh(source)


def test_a_run_of_some_modules_rewrites_those_and_the_conftests_not_the_suite(tmp_path: Path,
                                                                               request: pytest.FixtureRequest) -> None:
    """Figure: ``pytest -n 2 tests/unit/test_one.py`` on a cold tree rewrote all 395 test modules (~15 CPU-s) for
    one; now only the module asked for (and every conftest, which pytest loads whatever the paths)."""
    _tree(tmp_path)
    (tmp_path / "tests" / "test_other.py").write_text("def test_other():\n    assert True\n")
    asked = tmp_path / "tests" / "unit"
    stale = prewarm.prewarm(request.config, tmp_path, cores=1, args=[asked])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in stale) == ["tests/conftest.py", "tests/unit/test_one.py"]
    assert not prewarm.fresh(tmp_path / "tests" / "test_other.py")
