"""Configuration: defaults < config.yaml < GAMEAD_* env < flags, one error naming every bad key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gamead_core.config import MAX_CONFIG_BYTES, GameadSettings, load_settings, masked_dump
from gamead_core.errors import ConfigError

from tests.support import drop_gamead_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


def test_defaults_the_issue_names() -> None:
    s = load_settings()
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8080)
    assert s.nats.url is None
    assert s.queue.aging_step == 10.0
    assert s.analysis.simulated_latency_ms == 0


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("worker:\n  concurrency: 7\n  drain_timeout: 3\nqueue:\n  aging_step: 2\n")
    assert load_settings(cfg).worker.concurrency == 7
    monkeypatch.setenv("GAMEAD_WORKER__CONCURRENCY", "1")
    s = load_settings(cfg)
    assert (s.worker.concurrency, s.worker.drain_timeout, s.queue.aging_step) == (1, 3, 2)
    assert load_settings(cfg, worker={"concurrency": 9, "drain_timeout": None}).worker.concurrency == 9


def test_config_yaml_in_the_working_directory_and_gamead_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text("api:\n  port: 9000\n")
    assert load_settings().api.port == 9000
    other = tmp_path / "other.yaml"
    other.write_text("api:\n  port: 9100\n")
    monkeypatch.setenv("GAMEAD_CONFIG", str(other))
    assert load_settings().api.port == 9100


def test_every_issue_key_is_settable_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GAMEAD_API__HOST": "0.0.0.0",
        "GAMEAD_API__PORT": "9999",
        "GAMEAD_NATS__URL": "nats://n:4222",
        "GAMEAD_QUEUE__AGING_STEP": "2.5",
        "GAMEAD_QUEUE__ACK_WAIT": "7",
        "GAMEAD_WORKER__CONCURRENCY": "3",
        "GAMEAD_WORKER__DRAIN_TIMEOUT": "11",
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "50",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert (s.api.host, s.api.port, s.nats.url) == ("0.0.0.0", 9999, "nats://n:4222")
    assert (s.queue.aging_step, s.queue.ack_wait) == (2.5, 7)
    assert (s.worker.concurrency, s.worker.drain_timeout, s.analysis.simulated_latency_ms) == (3, 11, 50)


def test_bad_values_name_their_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEAD_WORKER__CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="worker.concurrency"):
        load_settings()


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("worker:\n  concurency: 3\n")
    with pytest.raises(ConfigError, match="worker.concurency"):
        load_settings(cfg)


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("api: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    return fifo


def _big(tmp_path: Path) -> Path:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    return big


def _written(content: str):
    def make(tmp_path: Path) -> Path:
        path = tmp_path / "c.yaml"
        path.write_text(content)
        return path
    return make


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp_path: Path("/dev/zero"), "/dev/zero is not a regular file"),
        (_fifo, "fifo.yaml is not a regular file"),  # opening it would wait for a writer forever
        (lambda tmp_path: tmp_path, "is not a regular file"),
        (_big, "big.yaml is larger than 1024 KiB"),
        (_written("just a string\n"), "must hold a mapping"),
        (_written("wokrer:\n  concurrency: 2\n"), "unknown top-level key 'wokrer' (did you mean 'worker'?)"),
        (_written("api:\n  port: [1\n"), "c.yaml is not valid YAML"),
        (_written("queue:\n  partitions: 3\nworker:\n  concurrency: 2\nqueue:\n  ack_wait: 30\n"),
         "key 'queue' is written twice (line 1 and line 5)"),
        (_written("queue:\n  partitions: 3\n  ack_wait: 30\n  partitions: 1\n"),
         "key 'queue.partitions' is written twice (line 2 and line 4)"),
        (_written("auth:\n  tokens:\n    - name: ci\n      role: viewer\n      name: ops\n"),
         "key 'auth.tokens[0].name' is written twice (line 3 and line 5)"),
    ],
    ids=["dev-zero", "fifo", "directory", "over-1-MiB", "scalar", "unknown-section", "syntax", "duplicate-section",
         "duplicate-nested-key", "duplicate-key-in-a-list"],
)
def test_the_file_is_checked_before_pydantic_settings_reads_it(
    tmp_path: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    """pydantic-settings' YAML source skips a path that is not a regular file without a word and would read
    ``/dev/zero`` until memory ran out: each of these is refused with the file named instead."""
    with pytest.raises(ConfigError) as info:
        load_settings(make(tmp_path))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_a_duplicate_key_is_refused_even_when_both_values_are_valid(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: ``partitions: 3`` then ``partitions: 1`` ran one partition
    without a word. Refused instead, naming both lines; the same value twice too (one of them is a slip)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# gamead\nqueue:\n  partitions: 3\n\nqueue:\n  partitions: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: key 'queue' is written twice \(line 2 and line 5\)"):
        load_settings(cfg)
    cfg.write_text("queue:\n  partitions: 3\nworker:\n  concurrency: 2\n")  # equal keys in two sections: fine
    assert load_settings(cfg).queue.partitions == 3
    cfg.write_text("base: &b {concurrency: 2}\n")  # anchors / aliases are walked once, not refused for that
    with pytest.raises(ConfigError, match="unknown top-level key 'base'"):
        load_settings(cfg)


def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queue:\n  ack_wait: soon\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert "c.yaml" in str(info.value) and "queue.ack_wait" in str(info.value)


def test_a_settings_object_built_without_load_settings_reads_no_file(tmp_path: Path) -> None:
    """The file of one ``load_settings`` call is not left behind for the next settings object."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("api:\n  port: 9000\n")
    assert load_settings(cfg).api.port == 9000
    assert GameadSettings().api.port == 8080


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEAD_NATS__PASSWORD", "hunter2")
    dumped = masked_dump(load_settings())
    assert dumped["nats"]["password"] == "********"
    assert "hunter2" not in repr(dumped)


def _keys(model: type, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        ann = field.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out |= _keys(ann, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


def _yaml_keys(data: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out |= _yaml_keys(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


#: keys the example documents commented out: set in a file, even to their default, they change what a CLI verb finds
#: (client.api_url wins over the running stack; embedded.data_dir stops the search in parent directories: newcomer55)
COMMENTED_OUT = {"client.api_url", "embedded.data_dir"}


def test_config_example_documents_every_key_and_loads() -> None:
    example = ROOT / "config.yaml.example"
    data = yaml.safe_load(example.read_text())
    assert _yaml_keys(data) == _keys(GameadSettings) - COMMENTED_OUT
    load_settings(example)  # and it is a valid config as it stands
    text = example.read_text()
    for key in _keys(GameadSettings):
        leaf = key.rsplit(".", 1)[-1]
        line = next(ln for ln in text.splitlines() if ln.strip().removeprefix("# ").startswith(f"{leaf}:"))
        assert "#" in line or any(
            prev.strip().startswith("#") for prev in text.splitlines()[max(0, text.splitlines().index(line) - 2):text.splitlines().index(line)]
        ), f"{key} has no comment"


def test_a_yaml_boolean_for_a_number_is_refused_not_read_as_1(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("queue:\n  partitions: true\n")
    with pytest.raises(ConfigError, match=r"queue\.partitions.*a number is expected, not true"):
        load_settings(cfg)


def test_the_wrong_file_as_config_is_not_echoed_into_the_error(tmp_path: Path) -> None:
    """``--config /etc/shadow`` printed every line as an unknown top-level key."""
    cfg = tmp_path / "shadow"
    cfg.write_text("".join(f"user{i}: $6$secret-hash-{i}{'x' * 80}\n" for i in range(20)))
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    message = str(caught.value)
    assert "and 17 more" in message and "user19" not in message and "secret-hash" not in message


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e308"])
def test_no_number_setting_takes_inf_or_nan_and_prefetch_wait_is_bounded(monkeypatch: pytest.MonkeyPatch,
                                                                          value: str) -> None:
    """A reviewer's hang: ``GAMEAD_WORKER__PREFETCH_WAIT=inf`` passed ``ge=0`` and stopped every worker after its
    first ads (and ``config show -o json`` printed ``Infinity``, not JSON). Every section refuses inf/nan."""
    monkeypatch.setenv("GAMEAD_WORKER__PREFETCH_WAIT", value)
    with pytest.raises(ConfigError, match=r"worker\.prefetch_wait"):
        load_settings(None)
    monkeypatch.delenv("GAMEAD_WORKER__PREFETCH_WAIT")
    monkeypatch.setenv("GAMEAD_QUEUE__ACK_WAIT", value)
    if value != "1e308":
        with pytest.raises(ConfigError, match=r"queue\.ack_wait.*finite"):
            load_settings(None)


def test_a_bucket_given_in_part_keeps_the_field_it_leaves_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ratelimit.failed_auth.rate: 5`` alone was refused ("failed_auth.burst: Field required"); now the burst
    stays the default, and a role's override keeps the general bucket's other field (from the file and the env)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ratelimit:\n  burst: 50\n  failed_auth:\n    rate: 5\n  roles:\n    operator:\n      rate: 9\n")
    monkeypatch.setenv("GAMEAD_RATELIMIT__ADMIN__BURST", "7")
    limits = load_settings(cfg).ratelimit
    assert (limits.failed_auth.rate, limits.failed_auth.burst) == (5.0, 20)
    assert (limits.admin.rate, limits.admin.burst) == (10.0, 7)
    assert (limits.roles["operator"].rate, limits.roles["operator"].burst) == (9.0, 50)
    cfg.write_text("ratelimit:\n  failed_auth:\n    burst: 0\n")
    with pytest.raises(ConfigError, match="failed_auth.burst"):
        load_settings(cfg)
