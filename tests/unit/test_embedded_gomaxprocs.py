"""The embedded nats-server's GOMAXPROCS (``embedded.gomaxprocs``; issue 14: the server shares the machine with
the API and the workers, and Go given every core spends a quarter of its CPU switching threads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.go_runtime import cgroup_cpu_limit, go_max_procs, usable_cores


def test_half_the_cores_at_least_one_unless_set_or_given_by_the_environment() -> None:
    half = "half of {} usable core(s); embedded.gomaxprocs 0"
    assert go_max_procs(0, {}, 2) == (1, half.format(2))  # this machine: one core, the Python roles beside it
    assert go_max_procs(0, {}, 8) == (4, half.format(8))
    assert go_max_procs(0, {}, 1) == (1, half.format(1))  # never 0: Go would read that as "all"
    assert go_max_procs(0, {"GOMAXPROCS": "2"}, 8) == (2, "GOMAXPROCS in the environment")  # the operator's
    for ignored in (" ", "0", "abc", "-3", "1.5", "\u00b2"):  # values Go itself ignores are not said to be in force
        assert go_max_procs(0, {"GOMAXPROCS": ignored}, 8) == (4, half.format(8)), ignored
    assert go_max_procs(3, {"GOMAXPROCS": "2"}, 8) == (3, "embedded.gomaxprocs")  # the setting wins


def test_the_servers_environment_carries_it_and_keeps_the_rest(tmp_path: Path) -> None:
    assert EmbeddedNats(tmp_path, gomaxprocs=2).env({"PATH": "/bin"}) == {"PATH": "/bin", "GOMAXPROCS": "2"}
    assert EmbeddedNats(tmp_path).env({"GOMAXPROCS": "7"}) == {"GOMAXPROCS": "7"}
    assert EmbeddedNats(tmp_path).env({"GOMAXPROCS": "x"})["GOMAXPROCS"] == str(max(1, usable_cores() // 2))


def _cgroup(tmp_path: Path, own: str, files: dict[str, str]) -> int | None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "self-cgroup").write_text(own)
    return cgroup_cpu_limit(tmp_path / "fs", tmp_path / "self-cgroup")


def test_a_containers_cpu_limit_bounds_the_usable_cores(tmp_path: Path) -> None:
    # cgroup v2: the smallest cpu.max from the process's cgroup up (2.5 cores → 3, above it 2)
    assert _cgroup(tmp_path / "a", "0::/pod/box\n", {"fs/pod/box/cpu.max": "250000 100000\n",
                                                      "fs/pod/cpu.max": "200000 100000\n"}) == 2
    assert _cgroup(tmp_path / "b", "0::/box\n", {"fs/box/cpu.max": "max 100000\n"}) is None  # no limit
    assert _cgroup(tmp_path / "c", "0::/\n", {}) is None  # the root: nothing to read
    # cgroup v1: the cpu hierarchy's quota and period (-1: none)
    assert _cgroup(tmp_path / "d", "4:cpu,cpuacct:/box\n", {"fs/cpu,cpuacct/box/cpu.cfs_quota_us": "50000\n",
                                                            "fs/cpu,cpuacct/box/cpu.cfs_period_us": "100000\n"}) == 1
    assert _cgroup(tmp_path / "e", "4:cpu,cpuacct:/\n", {"fs/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                                         "fs/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}) is None
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "missing") is None  # not Linux, or unreadable


def test_the_setting_is_read_and_bounded() -> None:
    assert GameadSettings().embedded.gomaxprocs == 0
    assert GameadSettings.model_validate({"embedded": {"gomaxprocs": 2}}).embedded.gomaxprocs == 2
    with pytest.raises(ValidationError, match="gomaxprocs"):
        GameadSettings.model_validate({"embedded": {"gomaxprocs": -1}})
