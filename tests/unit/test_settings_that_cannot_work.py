"""Settings that cannot work are refused at start (exit 5, one line naming them): a ``GAMEAD_*`` variable that is
no setting, related durations that contradict each other, periods too short to be anything but a busy loop.
Pure validation: ``load_settings`` over a clean environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_core.bound_text import seconds_text
from gamead_core.config import GameadSettings, load_settings
from gamead_core.config.env_names import OTHER_VARIABLES, refuse_unknown_variables
from gamead_core.errors import ConfigError
from tests.support import drop_gamead_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_gamead_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_gamead_env(monkeypatch, tmp_path)


def _refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    return str(caught.value)


# --- finding 4: a GAMEAD_* variable that is no setting ---------------------------------------------------------

@pytest.mark.parametrize(("name", "nearest"), [
    ("GAMEAD_WROKER__CONCURRENCY", "GAMEAD_WORKER__CONCURRENCY"),  # a mistyped section: was ignored, exit 0
    ("GAMEAD_WORKER_CONCURRENCY", "GAMEAD_WORKER__CONCURRENCY"),  # one underscore
    ("GAMEAD_API_ULR", "GAMEAD_API_URL"),
    ("GAMEAD_NOTHING_LIKE_IT", None),
])
def test_an_env_variable_that_is_no_setting_is_refused_with_the_nearest_name(
        monkeypatch: pytest.MonkeyPatch, name: str, nearest: str | None) -> None:
    message = _refusal(monkeypatch, **{name: "8"})
    assert f"environment variable {name} is no gamead setting" in message
    assert (f"did you mean {nearest}?" in message) if nearest else "did you mean" not in message


def test_a_wrong_key_in_a_real_section_is_still_named_by_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "queue.nope (GAMEAD_QUEUE__NOPE)" in _refusal(monkeypatch, GAMEAD_QUEUE__NOPE="1")


def test_every_setting_and_documented_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {name: "x" for name in OTHER_VARIABLES} | {
        "GAMEAD_WORKER__CONCURRENCY": "8", "GAMEAD_AUTOSCALER__KUBERNETES__NAMESPACE": "n",
        "GAMEAD_RATELIMIT__ROLES__OPERATOR__RATE": "1", "GAMEAD_WORKER": "{}", "gamead_log__level": "INFO"}
    refuse_unknown_variables(env, GameadSettings)  # no raise
    readme = (ROOT / "README.md").read_text()
    for name in OTHER_VARIABLES:  # each one documented, by name or as a family (`GAMEAD_TEST_FORKSERVER*`)
        assert f"`{name}`" in readme or any(f"`{name[:i]}*`" in readme for i in range(8, len(name) + 1)), name


def test_the_variables_kubernetes_puts_in_every_pod_for_a_service_are_not_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: the Service ``gamead-api`` (manifests/base/api.yaml) makes Kubernetes put ``GAMEAD_API_PORT=tcp://…``
    and its family into every pod of the namespace: each pod refused to start (exit 5) once unknown variables were
    refused. A bare ``…_PORT`` without a Service's value is still a mistyped setting."""
    links = {"GAMEAD_API_SERVICE_HOST": "10.96.0.5", "GAMEAD_API_SERVICE_PORT": "80",
             "GAMEAD_API_SERVICE_PORT_HTTP": "80", "GAMEAD_API_PORT": "tcp://10.96.0.5:80",
             "GAMEAD_API_PORT_80_TCP": "tcp://10.96.0.5:80", "GAMEAD_API_PORT_80_TCP_PROTO": "tcp",
             "GAMEAD_API_PORT_80_TCP_PORT": "80", "GAMEAD_API_PORT_80_TCP_ADDR": "10.96.0.5",
             "GAMEAD_METRICS_PORT": "tcp://10.96.0.9:9100"}
    refuse_unknown_variables(links, GameadSettings)  # no raise
    # attack39b F16: a Service named ``gamead`` itself (the first name an operator gives it) made every command of
    # a pod in its namespace exit 5 ("GAMEAD_PORT is no gamead setting (and 7 more …)")
    own = {"GAMEAD_SERVICE_HOST": "10.0.0.1", "GAMEAD_SERVICE_PORT": "80", "GAMEAD_SERVICE_PORT_HTTP": "80",
           "GAMEAD_PORT": "tcp://10.0.0.1:80", "GAMEAD_PORT_80_TCP": "tcp://10.0.0.1:80",
           "GAMEAD_PORT_80_TCP_PROTO": "tcp", "GAMEAD_PORT_80_TCP_PORT": "80", "GAMEAD_PORT_80_TCP_ADDR": "10.0.0.1"}
    refuse_unknown_variables(own, GameadSettings)  # no raise
    assert "GAMEAD_PORT is no gamead setting" in _refusal(monkeypatch, GAMEAD_PORT="9000")
    assert "did you mean GAMEAD_API__PORT?" in _refusal(monkeypatch, GAMEAD_API_PORT="9000")
    for manifest in ("api.yaml", "worker.yaml"):  # and the pods ask for none
        assert "enableServiceLinks: false" in (ROOT / "manifests" / "base" / manifest).read_text(), manifest


# --- finding 2: related durations that contradict each other ----------------------------------------------------

@pytest.mark.parametrize(("env", "named"), [
    # the registry TTL below two heartbeats: `up` restarted its worker every ~30 s, the reaper called the API dead
    ({"GAMEAD_REGISTRY__TTL": "1"}, ("registry.ttl (1s)", "registry.heartbeat_interval (2s)")),
    ({"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "6"}, ("registry.ttl (10s)", "registry.heartbeat_interval (6s)")),
    ({"GAMEAD_JOBS__RETENTION": "10"}, ("jobs.retention (10s)", "jobs.lease (15s)")),
    ({"GAMEAD_QUEUE__IDLE_POLL": "10"}, ("queue.idle_poll (10s)", "queue.idle_wait (5s)")),
    ({"GAMEAD_WORKER__BACKOFF_BASE": "90"}, ("worker.backoff_base (90s)", "worker.backoff_cap (60s)")),
    ({"GAMEAD_AUTOSCALER__STALE_AFTER_SECONDS": "2"},
     ("autoscaler.stale_after_seconds (2s)", "autoscaler.interval (5s)")),
    # NATS 10052 "duplicates window can not be larger then max age" when GAMEAD_DLQ / GAMEAD_AUDIT are created
    ({"GAMEAD_DLQ__MAX_AGE": "60"}, ("dlq.max_age (60s)", "queue.duplicate_window (120s)")),
    ({"GAMEAD_AUDIT__MAX_AGE": "100"}, ("audit.max_age (100s)", "queue.duplicate_window (120s)")),
    ({"GAMEAD_RECORDS__COMPLETED_MAX_AGE": "60"}, ("records.completed_max_age (60s)", "queue.duplicate_window")),
])
def test_related_durations_that_cannot_work_together_are_refused_naming_both(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: tuple[str, str]) -> None:
    message = _refusal(monkeypatch, **env)
    for text in named:
        assert text in message, message
    assert next(iter(env)) in message  # where the value in force was written


def test_the_edges_of_each_rule_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"GAMEAD_REGISTRY__TTL": "4", "GAMEAD_JOBS__RETENTION": "15", "GAMEAD_QUEUE__IDLE_POLL": "5",
                        "GAMEAD_WORKER__BACKOFF_BASE": "60", "GAMEAD_AUTOSCALER__STALE_AFTER_SECONDS": "5",
                        "GAMEAD_DLQ__MAX_AGE": "120", "GAMEAD_AUDIT__MAX_AGE": "120"}.items():
        monkeypatch.setenv(name, value)
    load_settings()  # no raise


# --- finding 3: periods so short that an idle process busy-loops ---------------------------------------------

#: every period, interval or lease with its floor (README Configuration; each Field's description says why)
FLOORS = {
    "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": 0.1, "GAMEAD_QUEUE__IDLE_POLL": 0.05, "GAMEAD_QUEUE__IDLE_WAIT": 0.5,
    "GAMEAD_QUEUE__ACK_WAIT": 1, "GAMEAD_QUEUE__DUPLICATE_WINDOW": 1, "GAMEAD_AUTOSCALER__INTERVAL": 0.2,
    "GAMEAD_JOBS__LEASE": 1, "GAMEAD_NATS__STALE_AFTER": 2, "GAMEAD_NATS__PING_INTERVAL": 1,
    "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": 0.1, "GAMEAD_API__STORAGE_PROBE_INTERVAL": 0.1,
    "GAMEAD_API__NATS_UNHEALTHY_AFTER": 1, "GAMEAD_REDIS__BREAKER_RESET": 0.1,
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_a_period_below_its_floor_is_refused_and_its_floor_is_accepted(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    floor = FLOORS[name]
    message = _refusal(monkeypatch, **{name: str(floor / 1000)})  # the attacker's 0.0001-like values
    assert f"({name}={floor / 1000:g})" in message or f"({name}={floor / 1000})" in message, message
    assert f"must be {seconds_text(floor)} to " in message, message  # range46: was pydantic's "greater than or equal"
    section, key = name.removeprefix("GAMEAD_").lower().split("__")
    field = GameadSettings.model_fields[section].annotation.model_fields[key]  # type: ignore[union-attr]
    assert f"at least {floor:g} s" in (field.description or "").lower(), f"{section}.{key} does not say its floor and why"
    monkeypatch.setenv(name, str(floor))
    monkeypatch.setenv("GAMEAD_REGISTRY__TTL", "10")  # the related rules hold at every floor
    load_settings()  # no raise


def test_the_attackers_idle_worker_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, GAMEAD_QUEUE__IDLE_POLL="0.000001", GAMEAD_QUEUE__IDLE_WAIT="0.001",
                       GAMEAD_QUEUE__HEAD_CACHE_MS="0")
    assert "queue.idle_poll" in message and "queue.idle_wait" in message
