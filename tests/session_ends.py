"""A session's servers stopped once this process is past the last test that uses them, not at its end.

The session-scoped fixtures of :data:`SERVERS` run real processes that cost CPU while idle: the ``stack`` (its
API, worker and NATS: 1.6 % of a core, session 38) and the three-node ``nats_cluster`` (0.6-0.9 % of a core per
node in session 39's loaded run: 68 CPU-s for 13 nodes in an 18-minute run). ``make test`` orders the modules
(tests/conftest.py: integration first, unit last) and pytest-xdist's ``loadgroup`` (``--no-loadscope-reorder``)
hands each worker its units of work in that order, so a worker that starts test *i* of the ordered list runs no
test before it afterwards: once past the last test that uses a server, this plugin (``pytest_plugins`` of
tests/conftest.py) tears the fixture down as pytest would at the session's end (its dependants first). The
servers' users run right after the longest modules (tests/conftest.py ``rank``, session 40): in the ordered suite
(3,685 tests) the cluster's last user is test 382, Valkey's 473, the ``stack``'s 673 and the session NATS's 682
(before: 566, 777, 1,723 and 2,516).

Nothing a test sees changes: a test that asks for a server after all (``request.getfixturevalue``, another order)
gets one set up anew, as for its first user. A pytest release without the private
``Session._fixturemanager`` makes this a warning and a no-op.
"""

from __future__ import annotations

import warnings

import pytest

#: session-scoped fixtures that run servers
SERVERS = ("nats_cluster", "stack", "nats_server", "valkey_server")

_LAST_USE: dict[str, int] = {}  #: fixture name -> position of the last item that uses it
_POSITION: dict[int, int] = {}  #: id(item) -> its position in the session's ordered items


def last_uses(fixturenames: list[tuple[str, ...]], servers: tuple[str, ...] = SERVERS) -> dict[str, int]:
    """For each server of ``servers``, the position of the last entry of ``fixturenames`` (each item's fixture
    names, in run order) that names it; servers no item uses are left out. Pure."""
    return {name: i for i, names in enumerate(fixturenames) for name in servers if name in names}


def past_last_use(position: int, last: dict[str, int]) -> list[str]:
    """The servers whose last user comes before ``position``. Pure."""
    return [name for name, at in last.items() if position > at]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note each item's position and each server's last user, in the order the items run (all
    ``pytest_collection_modifyitems`` hooks, tests/conftest.py's sort included, have run)."""
    _POSITION.clear()
    _POSITION.update((id(item), i) for i, item in enumerate(session.items))
    _LAST_USE.clear()
    _LAST_USE.update(last_uses([tuple(getattr(item, "fixturenames", ())) for item in session.items]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before ``item``'s fixtures are set up: tear down the servers whose last user came before it."""
    position = _POSITION.get(id(item))
    if position is None:
        return
    for name in past_last_use(position, _LAST_USE):
        _finish(item, name)


def _finish(item: pytest.Item, name: str) -> None:
    """Tear down the session fixture ``name`` if it is set up (its dependants first: they are its finalizers)."""
    manager = getattr(item.session, "_fixturemanager", None)
    if manager is None:
        warnings.warn("tests.session_ends: pytest's Session has no _fixturemanager: session servers run to the "
                      "session's end", stacklevel=1)
        _LAST_USE.clear()
        return
    for fixturedef in manager.getfixturedefs(name, item) or ():
        if fixturedef.scope == "session" and fixturedef.cached_result is not None:
            fixturedef.finish(item._request)  # noqa: SLF001 - the request whose node reports the teardown
    _LAST_USE.pop(name, None)
