"""Session fixtures: a real nats-server on a free loopback port (stopped by PID), a real API process and a
real worker process on it. Tests that need a queue of their own use ``fresh_nats``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

from gamead_core import collector
from gamead_core.embedded import EmbeddedNats
from tests import dies_with_pytest  # noqa: F401 - on import: every child of pytest dies with it (rule 4)
from tests import forked_shell
from tests.nats_filter import PublishFilter
from tests.ports import ReservedPort
from tests.support import ForkServer, Proc, start_api, start_worker

pytest_plugins = ["tests.prewarm", "tests.redis_fixtures", "tests.cluster", "tests.timeline", "tests.shared_tls",
                  "tests.session_ends", "tests.tiny_disk", "tests.plain_sigint", "tests.timeout_reports",
                  "tests.escaped_interrupts"]

#: Hypothesis's checks of a test's own speed (a 200 ms deadline per example; "input generation is slow" past 1 s of
#: draws, 30 s without a deadline) are timings of the machine, not what a test asserts: 24 of the suite's 29 modules
#: of @given tests had set deadline=None one by one. Suite48's run at load 14-23 (-n 10) failed two of the others so,
#: each passing alone: test_submit_path (DeadlineExceeded, 234 ms) and test_idempotency (FailedHealthCheck too_slow,
#: 4 inputs in 1.16 s), and test_one_of_each's backoff property at load 17. A test may still set a deadline of its own.
settings.register_profile("gamead", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("gamead")


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    """The fork server of ``tests.support.Proc`` (started on first use) is stopped and reaped after
    everything else of the session; the forking ``gamead`` of shell scripts (``tests.forked_shell``) removed."""
    yield
    forked_shell.remove()
    ForkServer.shutdown()


@pytest.fixture(autouse=True)
def _process_clock_forgotten() -> None:
    """Each test starts with this process's nats-server clock (:data:`gamead_core.clock.CLOCK`) knowing no sample:
    an earlier test's sample stays its anchor, within ± half its round trip of nats-server's time (a loaded machine:
    up to seconds), and a test that compares ``clock.now()`` with a stamp nats-server just wrote read it as earlier
    than a record written before it (fresh clone of 2a70f227: test_orphans' older_line read None)."""
    from gamead_core.clock import CLOCK

    CLOCK.forget()


@pytest.fixture(autouse=True)
def _stop_forgotten() -> None:
    """Each test starts with the CLI's stop state of a fresh command (:data:`gamead_cli.first_signals.STOPPED`,
    ``PHASE``): a test whose ``signals_interrupt`` block ended by SIGTERM left ``STOPPED`` set, and a later one in the
    same worker that prints a Ctrl-C's line read ``interrupted (SIGTERM)`` (fresh clone at load 30:
    test_submit_summary after test_interrupt_point)."""
    from gamead_cli.first_signals import none_yet

    none_yet(command=None, starting=False)


@pytest.fixture
def closed_port() -> Iterator[Callable[[], int]]:
    """Factory of loopback ports where nothing answers (a connect is refused), each held for the whole test
    (:class:`tests.ports.ReservedPort`: bound, not listening) and let go at its end. Before (nothing54), such a
    port was a ``free_port()`` pick or a ``bind(0)`` let go at once: another process of this shared machine could
    bind it meanwhile, and the test then talked to a stranger (a wrong answer, a hang, a flake)."""
    held: list[ReservedPort] = []

    def hold() -> int:
        held.append(ReservedPort())
        return held[-1].port

    yield hold
    for port in held:
        port.release()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[Callable[[], EmbeddedNats]]:
    """Factory of NATS servers with an empty store, for tests that need a queue to themselves."""
    started: list[EmbeddedNats] = []

    def make() -> EmbeddedNats:
        server = EmbeddedNats(tmp_path / f"nats{len(started)}").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def links(fresh_nats: Callable[[], EmbeddedNats]) -> Iterator[list[PublishFilter]]:
    """The proxies (:class:`tests.nats_filter.PublishFilter`) a test starts, stopped after its processes (a test
    lists it before ``procs``)."""
    made: list[PublishFilter] = []
    yield made
    for link in made:
        link.stop()


@pytest.fixture
def procs(fresh_nats: Callable[[], EmbeddedNats]) -> Iterator[list[Proc]]:
    """Processes a test starts; all stopped (by PID) at the end, their logs shown if the test failed.

    Set up after ``fresh_nats`` (its parameter, unused) so that they are stopped *before* the test's NATS servers:
    a worker left running after its server stopped reconnects to the same address, and a later test's server
    that took the freed port got its acks (an ack names a stream sequence, and each test's first ad is 1):
    once in a full run, a work stream of ``max_msgs`` 1 took a second ad (``test_record_first``)."""
    started: list[Proc] = []
    yield started
    stop_together(started, timeout=3)


def stop_together(started: list[Proc], timeout: float) -> None:
    """Stop every process of ``started`` by PID: SIGTERM to all at once, then SIGKILL to those still running
    ``timeout`` seconds later, one deadline for all. The test has asserted all it will: before, each process was
    given 10 s in turn, and a worker draining a hung analysis (``worker.drain_timeout`` 25 s) took 10 s of its
    test's teardown (4 tests in a loaded run of session 32: test_prefetch, test_dlq, test_held_oldest,
    test_dlq_export_fence), two such workers 20 s."""
    alive = [p.popen for p in started if p.popen is not None and p.popen.poll() is None]
    for popen in alive:
        popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for popen in alive:
        try:
            popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.send_signal(signal.SIGKILL)
            popen.wait()


@pytest.fixture(scope="session")
def stack(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A running API and one worker (4 slots) on the session NATS."""
    logs = tmp_path_factory.mktemp("stack-logs")
    api, url = start_api(nats_server.url, logs)
    worker = start_worker(nats_server.url, logs, worker_id="session-worker", concurrency=4, ready=True)
    yield {"api": api, "url": url, "worker": worker, "nats": nats_server}
    worker.stop()
    api.stop()


@pytest.fixture(scope="session")
def api_url(stack: dict[str, object]) -> str:
    return str(stack["url"])


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as c:
        yield c


# --- running in parallel: `make test` = pytest -n 10 --dist loadgroup --no-loadscope-reorder ------------

#: directories in the order their modules start: the long ones with real servers first, so that the short
#: ones fill the gaps at the end and the workers finish together
_ORDER = ("tests/integration/", "tests/tui/", "tests/cli/", "tests/unit/")
#: the longest modules start before all others, longest first (the first ones each on a worker of its own), then
#: the rest by directory: the short ones fill the gaps at the end, so the workers finish together. Their own times
#: in two loaded runs of `make test` (flakes session: load 6-11, then 10-15): test_up 102 / 224 s,
#: test_kubernetes_backend 130 / 142, test_schemathesis 27 / 109 (CPU-bound: the most load-sensitive; 136 in session
#: 19), test_nats_stall 88 / 97, tests/tui/test_snapshots 38 / 87, tests/cli/test_attack24_cli 60 / 56. Session 29
#: (load 8-10, -n 4, 730 s): test_up 179, test_kubernetes_backend 148, test_nats_stall 103, test_schemathesis 38,
#: then test_up_parent, test_cli_errors, test_worker_faults, test_autoscaler, test_cluster_frozen,
#: test_up_late_refusal (one test), test_dlq and test_attack24_cli 56-64 each. Suite45 (-n 10, 349 s, the other
#: workers done at 334-342 s): the last to end were two cli modules started with the cli directory at ~300 s,
#: test_hostile_answers (46 s) and test_submit_outage_accounts (40 s): now they start with these. Suite47 (-n 10, two
#: runs, load 8-22 and 2-12, GAMEAD_TEST_TIMELINE): the workers ended within 6 and 7 s of each other, so the run is
#: its worker-seconds over 10, not a tail; the four first here, each on a worker of its own from 0 s, were still the
#: longest (test_up 240 / 125 s, test_kubernetes_backend 192 / 150, test_schemathesis 197 / 71, test_nats_stall 128 /
#: 100); test_clock_skew_worker (79-81 s) and test_orphans (62-69 s) start early with the integration directory
_LONGEST = ("tests/integration/test_up.py", "tests/integration/test_kubernetes_backend.py",
            "tests/integration/test_nats_stall.py", "tests/integration/test_schemathesis.py",
            "tests/integration/test_up_parent.py", "tests/integration/test_worker_faults.py",
            "tests/integration/test_autoscaler.py", "tests/integration/test_cluster_frozen.py",
            "tests/integration/test_up_late_refusal.py", "tests/integration/test_dlq.py",
            "tests/cli/test_cli_errors.py", "tests/cli/test_attack24_cli.py", "tests/tui/test_snapshots.py",
            "tests/cli/test_submit_lookup_bound.py", "tests/cli/test_hostile_answers.py",
            "tests/cli/test_submit_outage_accounts.py")
#: CPU-bound unit modules that start first among the unit ones, not with the servers' start-ups above (session 29:
#: started there, at load 17, test_analyzer_equivalence took 184 s and its hypothesis test passed pytest's 120 s
#: timeout) and not last of all on one worker (at load 8-10: test_analyzer_equivalence 42 s, test_supervisor 36 s
#: ran after every other module; session 32: test_sampler_memory, 11-32 s, ran last and ended the run 11-20 s after
#: the other workers)
_FIRST_OF_THEIR_DIRECTORY = ("tests/unit/test_analyzer_equivalence.py", "tests/unit/test_analyzer.py",
                             "tests/unit/test_scaling_policy.py", "tests/unit/test_queued_json.py",
                             "tests/unit/test_supervisor.py", "tests/unit/test_sampler_memory.py")


#: long modules whose tests share no module-scoped fixture, each split into this many units of work that can run
#: on different workers (their tests that use a module-scoped fixture stay one unit, in their written order).
#: Session 32: in a loaded run (load 12-20, 764 s of tests) the workers ended within 18 s of each other, but the
#: last was test_submit_lookup_bound's (81 s, two 38 s cases that wait out the lookup's 30 s bound), a cli module
#: started at 557 s. test_up split in 2 (+ its ``stack`` tests) ran three ``gamead up`` stacks at once and its
#: busy-worker test, timed against ``registry.ttl`` 4 s, failed: modules of such tests are not split
_SPLIT = {"tests/cli/test_submit_lookup_bound.py": 2}
# A module whose tests share module-scoped servers but no state through them may deal its tests over units of its
# own (``xdist_group`` marks ``<path>#<k>``), each unit starting the servers once on its worker: test_schemathesis
# (one test per API operation, dealt by weight over UNITS = 2; all on one worker took 527 s at load ~35)


def _shares_a_fixture(item: pytest.Item) -> bool:
    """True if ``item`` uses a fixture set up once for several tests of its module (scope class, module or
    package): such tests stay one unit of work, on one worker."""
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(d.scope in ("class", "module", "package")
                                    for defs in info.name2fixturedefs.values() for d in defs)


def _groups(items: list[pytest.Item]) -> dict[str, str]:
    """Each item's unit of work (``xdist_group`` name) by node id: its module's path, or for a module of
    ``_SPLIT``, ``<path>#<k>`` (its tests that share no module fixture dealt out in turn over the units)."""
    dealt: dict[str, int] = {}
    groups = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in _SPLIT and not _shares_a_fixture(item):
            k = dealt.get(path, 0)
            dealt[path] = k + 1
            groups[item.nodeid] = f"{path}#{k % _SPLIT[path]}"
        else:
            groups[item.nodeid] = path
    return groups


def _group_of(item: pytest.Item) -> str:
    """The name of ``item``'s ``xdist_group`` mark (its unit of work)."""
    mark = item.get_closest_marker("xdist_group")
    return str(mark.args[0] if mark is not None and mark.args else mark.kwargs.get("name") if mark else "")


def rank(path: str, group: str, served: set[str]) -> tuple[int, int, int]:
    """The sort key of a test of module ``path`` in unit of work ``group`` (pure): ``_LONGEST`` first, longest
    first; then the units of ``served`` (a session server's users), then the rest, each by ``_ORDER`` with
    ``_FIRST_OF_THEIR_DIRECTORY`` first in theirs. A session server stops once a worker is past its last user
    (tests/session_ends.py), so its users come together, early. Session 40 (3,683 tests, ordered by directory
    alone): the ``stack``'s last user was test 1,723 and the session NATS's 2,516, so each of the 6 workers kept an
    idle API, worker and nats-server (1.5 % of a core) into the unit phase; in a run of ``make test`` they lived
    3,100 and 2,960 worker-seconds and reported 90.5 CPU-s at their stop; with their users first (last users 673
    and 682), 886 and 713 worker-seconds and 28.4 CPU-s (over the same tests' CPU in the other run)."""
    if path in _LONGEST:
        return 0, _LONGEST.index(path), 0
    directory = next((i for i, prefix in enumerate(_ORDER) if path.startswith(prefix)), len(_ORDER))
    return 1 if group in served else 2, directory, 0 if path in _FIRST_OF_THEIR_DIRECTORY else 1


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make each test module one unit of work for pytest-xdist's ``loadgroup``: its module-scoped servers start
    once, on one worker, and its tests run in their written order. A module that shares a package-scoped
    fixture with others says so with ``pytestmark = pytest.mark.xdist_group("<name>")`` (all of them run on one
    worker); one whose tests share only servers may deal them over units of its own the same way. The long
    modules of ``_SPLIT`` are a few units each (:func:`_groups`). Then order the modules
    (:func:`rank`): ``_LONGEST``, the session servers' users, the rest (stable: the tests of a module stay
    together, in order)."""
    groups = _groups(items)
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    # imported here: at the top, before pytest_plugins registers it, it could not be rewritten
    from tests.session_ends import SERVERS

    served = {_group_of(item) for item in items if set(getattr(item, "fixturenames", ())) & set(SERVERS)}
    items.sort(key=lambda item: rank(item.nodeid.split("::", 1)[0], _group_of(item), served))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Spare the tests the collector's traversals of what collection built (the modules, the items): the same
    tuning as ``serve`` and ``worker`` (:func:`gamead_core.collector.tune`: frozen, the young generation collected
    every 50,000 allocations instead of 700). Textual apps and hypothesis allocate a lot, and a pytest process's
    full collections each walked its whole heap: in the TUI tests the collector took 22 of 90 s of CPU, 7 s after
    this (``gc.callbacks`` timing, tests/tui in one process)."""
    collector.tune()


def pytest_unconfigure() -> None:
    """Collect once, then freeze what survives: pytest's own cleanup, which runs next, collects five times in a
    row over the whole heap (``_pytest.unraisableexception``: to report what finalizers raise), 0.5-1.8 s of CPU
    per process here, and a pytest-xdist worker still busy 5 s after its controller said stop is sent SIGINT by
    execnet. Its KeyboardInterrupt traceback, raised inside a collection, ended stop 27's CI output and 8 fresh
    clones' runs in sessions 16-17. What a finalizer raises in this collection is still reported by pytest.
    (:func:`gamead_core.collector.tune` does exactly that, and raises thresholds that no longer matter.)"""
    collector.tune()
