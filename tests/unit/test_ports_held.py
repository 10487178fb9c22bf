"""nothing54: a loopback port a test names but never holds is anyone's until the test connects there.

Two forms left a port so: ``free_port()`` (a port free *when it looked*) put in a URL where "nothing answers", and a
``socket.socket()`` bound to port 0 whose number is used after the ``with`` closed it. On this shared machine another
process may bind that port meanwhile (another session's suite or ``gamead up``), and the test then talks to a stranger:
a wrong answer, a hang, a flake no one can reproduce. The sanctioned ways:

* a port where nothing answers: held for the test's life, :class:`tests.ports.ReservedPort` (the ``closed_port``
  fixture of tests/conftest.py, or ``with ReservedPort()`` around a module fixture's life);
* a port handed to a process that binds it: picked again when taken (:func:`tests.support.on_a_free_port`,
  ``serve_ready``, ``start_api``, :func:`tests.ports.start_metered_worker`, ``up_stack``, the cluster's restart);
* a port bound here and now: ``bind((host, 0))`` kept open while it is used.

This check reads every test module (ast, no import) and fails on a bare ``free_port(`` call outside the allow-list
below (each entry with its reason), and on a port-0 socket whose port is used after the socket is closed.
Before the fix (nothing54): 28 bare calls in 16 modules and 9 let-go sockets in 9 modules."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: (module, enclosing function) -> why a bare ``free_port()`` call is sound there
ALLOWED: dict[tuple[str, str], str] = {
    ("ports.py", "__init__"): "ReservedPort itself: binds the pick at once, picks again if it was taken",
    ("ports.py", "start_metered_worker"): "the worker binds it; exit 5 'is taken' is picked again",
    ("support.py", "on_a_free_port"): "the re-pick mechanism itself",
    ("support.py", "_again"): "UpStack's re-pick after up said the port was lost",
    ("support.py", "up_stack"): "UpStack picks again when up says a pick was lost (UpStack._lost)",
    ("cluster.py", "__post_init__"): "NatsCluster.start picks every node's ports again when one was lost",
    ("cluster.py", "start"): "NatsCluster.start's re-pick",
    ("integration/test_metered_worker.py", "<lambda>"): "a re-pick test: the fallback after a taken first pick",
    ("integration/test_embedded_start.py", "<lambda>"): "a re-pick test: the fallback after a taken first pick",
    ("integration/test_up_metrics_picked.py",
     "test_a_metrics_port_up_picked_and_another_process_took_is_picked_again"):
        "the base of up's WorkerMetricsPorts, which plans past a taken port (the test's subject)",
    ("unit/test_liveness_answers.py", "asked"): "WorkerMetricsPorts' base; asked() is retried on OSError",
    ("unit/test_up_hints.py",
     "test_a_workers_kept_metrics_port_taken_while_it_was_down_falls_back_at_its_restart_with_a_line"):
        "WorkerMetricsPorts' base: a planner that moves past a taken port (the test's subject)",
    ("unit/test_up_hints.py",
     "test_a_wildcard_hosts_metrics_port_held_on_one_address_is_not_kept_nor_planned"):
        "WorkerMetricsPorts' base: a planner that moves past a taken port (the test's subject)",
    ("unit/test_free_port.py", "test_a_free_port_is_outside_the_ephemeral_range_and_free"): "free_port's own test",
    **{("unit/test_port_claims.py", name): "a number in this test's own claims directory: never bound nor connected"
       for name in ("test_a_claimed_port_is_refused_to_another_stack_naming_the_holder_until_it_is_released",
                    "test_a_port_picked_skips_the_ones_another_stack_claims",
                    "test_a_port_picked_is_never_one_this_stack_holds_already",
                    "test_a_directory_others_can_write_turns_claims_off_with_a_reason",
                    "test_a_workers_planned_metrics_port_another_stack_claims_falls_back_with_a_line",
                    "test_lock_files_nobody_holds_are_swept_at_start_and_a_look_leaves_none")},
}


#: (module, enclosing function) -> why a port-0 socket's number read after the socket closed is sound there
LET_GO_ALLOWED: dict[tuple[str, str], str] = {
    ("unit/test_lifeline.py", "test_port_checks_name_the_owner"): "asserts the port is free once let go (its subject)",
    ("integration/test_up.py", "test_a_taken_nats_port_is_one_red_line"):
        "the number only in the expected message: nothing connects there after the hold",
}


@functools.cache
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    """Every module under tests/ by its path there, parsed once for the module's three checks (read only: ~650
    files, 1.5-2 CPU-s a parse of them all on this machine; suite55)."""
    return tuple((path.relative_to(TESTS).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path)))
                 for path in sorted(TESTS.rglob("*.py")) if ".venv" not in path.parts)


def _called(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _scopes(tree: ast.AST, scope: str = "<module>") -> list[tuple[str, ast.AST]]:
    """Every node with the name of the function (or lambda) that holds it."""
    found: list[tuple[str, ast.AST]] = []
    for child in ast.iter_child_nodes(tree):
        inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else (
            "<lambda>" if isinstance(child, ast.Lambda) else scope)
        found.append((scope, child))
        found += _scopes(child, inner)
    return found


def bare_free_port_calls() -> list[str]:
    """``module:line in function`` of each ``free_port(...)`` call not in :data:`ALLOWED`."""
    return [f"{name}:{node.lineno} in {scope}" for name, tree in _modules() for scope, node in _scopes(tree)
            if isinstance(node, ast.Call) and _called(node) == "free_port" and (name, scope) not in ALLOWED]


def _is_socket(item: ast.withitem) -> bool:
    call = item.context_expr
    return isinstance(call, ast.Call) and _called(call) in ("socket", "create_server")


def _reads_port(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "getsockname" for n in ast.walk(node))


def _let_go(body: list[ast.stmt]) -> list[int]:
    """Lines of ``with socket(...)`` blocks in ``body`` whose port is returned from inside (closed on return) or
    assigned there and read after the block (closed by then)."""
    lines: list[int] = []
    for at, stmt in enumerate(body):
        if not (isinstance(stmt, ast.With) and any(_is_socket(item) for item in stmt.items)):
            continue
        inner = [n for s in stmt.body for n in ast.walk(s)]
        if any(isinstance(n, ast.Return) and n.value is not None and _reads_port(n.value) for n in inner):
            lines.append(stmt.lineno)
            continue
        names = {t.id for n in inner if isinstance(n, ast.Assign) and _reads_port(n.value)
                 for t in n.targets if isinstance(t, ast.Name)}
        later = {n.id for s in body[at + 1:] for n in ast.walk(s) if isinstance(n, ast.Name)}
        if names & later:
            lines.append(stmt.lineno)
    return lines


def let_go_sockets() -> list[str]:
    """``module:line in function`` of each port-0 socket whose port is used once the socket is closed, outside
    :data:`LET_GO_ALLOWED`."""
    found: list[str] = []
    for name, tree in _modules():
        for scope, node in [("<module>", tree), *_scopes(tree)]:
            inner = node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if isinstance(body, list) and (name, inner) not in LET_GO_ALLOWED:
                    found += [f"{name}:{line} in {inner}" for line in _let_go(body)]
    return found


def test_no_test_names_a_free_port_it_does_not_hold_or_pick_again() -> None:
    assert bare_free_port_calls() == [], (
        "free_port() outside the sanctioned helpers: hold a port where nothing answers with the closed_port "
        "fixture (tests.ports.ReservedPort), or start the process that binds it with on_a_free_port; "
        "or add the call to ALLOWED with its reason")


def test_every_allowed_call_is_still_there() -> None:
    """An entry whose call is gone would let a new bare call in that place pass unseen."""
    called = {(name, scope) for name, tree in _modules() for scope, node in _scopes(tree)
              if isinstance(node, ast.Call) and _called(node) == "free_port"}
    assert set(ALLOWED) - called == set()


def test_no_test_lets_go_of_a_port_it_then_uses() -> None:
    assert let_go_sockets() == [], (
        "a port bound to 0 and closed before it is used is anyone's: keep the socket open (bind here), or hold "
        "the port with the closed_port fixture (tests.ports.ReservedPort) where nothing should answer")


def test_the_check_sees_both_forms() -> None:
    """The check's own figure: each form it forbids, written as the tests wrote them, is found."""
    bare = ast.parse("def t():\n    url = f'nats://127.0.0.1:{free_port()}'\n")
    assert [scope for scope, n in _scopes(bare) if isinstance(n, ast.Call) and _called(n) == "free_port"] == ["t"]
    returned = ast.parse("def p():\n    with socket.socket() as s:\n        s.bind(('127.0.0.1', 0))\n"
                         "        return s.getsockname()[1]\n")
    assert _let_go(returned.body[0].body) == [2]  # type: ignore[attr-defined]
    used_after = ast.parse("with socket.socket() as s:\n    s.bind(('127.0.0.1', 0))\n    port = s.getsockname()[1]\n"
                           "url = f'http://127.0.0.1:{port}'\n")
    assert _let_go(used_after.body) == [1]
    held = ast.parse("with socket.socket() as s:\n    s.bind(('127.0.0.1', 0))\n    port = s.getsockname()[1]\n"
                     "    use(port)\n")
    assert _let_go(held.body) == []
