"""The order ``make test`` deals its modules in (tests/conftest.py ``rank``): the longest first, then the users of the
session's servers, so that a worker past their last user stops them (tests/session_ends.py)."""

from __future__ import annotations

from tests.conftest import _LONGEST, rank
from tests.session_ends import last_uses

#: module path -> the session servers its tests use
MODULES = {
    "tests/integration/test_own_servers.py": (),
    "tests/tui/test_keys.py": (),
    "tests/cli/test_live.py": ("stack", "nats_server"),
    "tests/unit/test_wire.py": ("nats_server",),
    "tests/unit/test_pure.py": (),
    _LONGEST[0]: ("stack",),
}


def test_the_session_servers_users_come_right_after_the_longest_modules_and_before_every_other() -> None:
    """Figure: ordered by directory alone (before), the stack's last user was the 4th module of 6 and the session
    NATS's the 5th, past every integration and TUI module that uses neither: each worker kept them idling on."""
    served = {path for path, servers in MODULES.items() if servers}
    order = sorted(MODULES, key=lambda path: rank(path, path, served))
    assert order == [_LONGEST[0], "tests/cli/test_live.py", "tests/unit/test_wire.py",
                     "tests/integration/test_own_servers.py", "tests/tui/test_keys.py", "tests/unit/test_pure.py"]
    assert last_uses([MODULES[path] for path in order]) == {"stack": 1, "nats_server": 2}


def test_a_unit_of_work_is_ranked_as_a_whole() -> None:
    """A module in a unit of work (``xdist_group``) whose other module uses a server comes with it."""
    order = sorted(["tests/tui/test_b.py", "tests/integration/test_c.py", "tests/tui/test_a.py"],
                   key=lambda path: rank(path, "tui-shared" if "tui" in path else path, {"tui-shared"}))
    assert order == ["tests/tui/test_b.py", "tests/tui/test_a.py", "tests/integration/test_c.py"]
