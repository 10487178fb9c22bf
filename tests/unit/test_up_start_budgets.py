"""The suite's own budgets: a test that waits for a ``gamead up`` stack's start (``UpStack.wait_ready``, whose
deadline covers a start on a loaded machine) runs under a pytest timeout longer than that deadline.

flake54: at load ~33 (two suites at once on 2 cores) the busy-worker test of tests/integration/test_up.py, under
the default 120 s, was cut by pytest-timeout inside its 30 s wait for gamead up's verdict line: over 90 s had gone
on the stack's start and its worker's first beat, so its own deadline never fired and the failure said nothing of
what gamead up had said. A test's deadlines are its assertions; pytest-timeout is the net under them, not one."""

from __future__ import annotations

import ast
import inspect
import tomllib
from pathlib import Path

from tests.support import UpStack

ROOT = Path(__file__).resolve().parents[2]

#: seconds ``UpStack.wait_ready`` waits by default for a stack's start
WAIT_READY = inspect.signature(UpStack.wait_ready).parameters["timeout"].default


def _default_timeout() -> float:
    """The suite's pytest timeout (pyproject.toml ``[tool.pytest.ini_options] timeout``), in seconds."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return float(options["timeout"])


def _timeout_of(decorators: list[ast.expr]) -> float | None:
    """The seconds of a ``pytest.mark.timeout(N)`` among ``decorators`` (or in a ``pytestmark``), else None."""
    for mark in decorators:
        for node in ast.walk(mark):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "timeout"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                return float(node.args[0].value)
    return None


def _waits_for_a_start(function: ast.FunctionDef) -> bool:
    """True if ``function`` calls ``<stack>.wait_ready(...)``."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wait_ready"
               for node in ast.walk(function))


def short_budgets(source: str, default: float) -> list[tuple[str, float]]:
    """The tests of a module (``source``) that wait for a stack's start, in their own body or in a fixture of the
    module they ask for, under a pytest timeout (their mark, the module's ``pytestmark``, else ``default``) not
    longer than ``WAIT_READY``: [(test name, its timeout in seconds)]."""
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    starting = {f.name for f in functions if not f.name.startswith("test_") and _waits_for_a_start(f)}
    module_marks = [n.value for n in tree.body if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets)]
    module_timeout = _timeout_of(module_marks)
    short = []
    for test in (f for f in functions if f.name.startswith("test_")):
        asks = {a.arg for a in test.args.args} & starting
        if not (_waits_for_a_start(test) or asks):
            continue
        budget = _timeout_of(test.decorator_list) or module_timeout or default
        if budget <= WAIT_READY:
            short.append((test.name, budget))
    return short


def test_a_test_cut_inside_its_wait_is_found() -> None:
    """The flake54 shape (no mark: the default 120 s) and a fixture's start are found; a mark past the deadline,
    on the test or its module, is not."""
    source = '''
import pytest

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    up = up_stack(tmp_path_factory.mktemp("up")).start()
    up.wait_ready()
    yield up

def test_short(tmp_path):
    up_stack(tmp_path).start().wait_ready()

def test_by_fixture(stack):
    pass

@pytest.mark.timeout(300)
def test_long(tmp_path):
    up_stack(tmp_path).start().wait_ready()

def test_no_stack():
    pass
'''
    assert short_budgets(source, 120.0) == [("test_short", 120.0), ("test_by_fixture", 120.0)]
    assert short_budgets("pytestmark = pytest.mark.timeout(300)\n" + source, 120.0) == []


def test_every_test_that_waits_for_a_stacks_start_has_more_time_than_that_wait() -> None:
    """Figure: before, 23 tests in 12 modules (the flake54 one among them) waited up to 240 s for a start under
    120-240 s."""
    default = _default_timeout()
    short = {str(path.relative_to(ROOT)): found for path in sorted((ROOT / "tests").rglob("test_*.py"))
             if (found := short_budgets(path.read_text(), default))}
    assert short == {}, f"tests waiting up to {WAIT_READY} s for gamead up's start under a shorter pytest timeout"
