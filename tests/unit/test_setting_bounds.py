"""Every number of the settings tree has an upper bound, said in its description, and a value past it is one config
error naming the setting (attack24 #4: ``GAMEAD_REGISTRY__TTL=1e300`` passed validation, then `gamead serve` retried
for ever on nats-py's OverflowError and `gamead up` blamed NATS). The walk below reads the pydantic models, so a
number added later without a bound fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gamead_core.config import GameadSettings, load_settings
from gamead_core.config.section import leaf_types
from gamead_core.errors import ConfigError
from tests.support import drop_gamead_env

ROOT = Path(__file__).resolve().parents[2]
#: the key a ``dict[str, Section]`` setting is walked under (``ratelimit.roles.operator.rate``)
_DICT_KEY = "operator"


def _models(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The sections ``annotation`` holds, each with True if it is held as the values of a dict."""
    found = []
    for kind in leaf_types(annotation):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found.append((kind, False))
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is dict and len(args) == 2:
        found = [(m, True) for m, _ in _models(args[1])]
    return found


def numeric_fields(model: type[BaseModel] = GameadSettings,
                   path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FieldInfo, type]]:
    """Every setting of the tree that takes an int or a float: (its path, its field, int or float)."""
    for name, field in model.model_fields.items():
        kinds = leaf_types(field.annotation)
        for sub, in_dict in _models(field.annotation):
            yield from numeric_fields(sub, (*path, name, _DICT_KEY) if in_dict else (*path, name))
        if bool not in kinds and (float in kinds or int in kinds):
            yield (*path, name), field, float if float in kinds else int


FIELDS = sorted(numeric_fields(), key=lambda f: f[0])
IDS = [".".join(p) for p, _, _ in FIELDS]


def _upper_bound(field: FieldInfo) -> float | None:
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Le):
            return rule.le  # type: ignore[return-value]
        if isinstance(rule, annotated_types.Lt):
            return rule.lt  # type: ignore[return-value]
    return None


def test_the_walk_finds_the_settings_of_the_drill() -> None:
    assert len(FIELDS) > 80
    for key in ("registry.ttl", "queue.aging_step", "client.timeout", "api.max_body_bytes", "api.list_scan_limit",
                "ratelimit.roles.operator.rate", "autoscaler.kubernetes.request_timeout", "worker.faults.attempts"):
        assert key in IDS, key


@pytest.mark.parametrize(("path", "field", "kind"), FIELDS, ids=IDS)
def test_every_number_has_an_upper_bound_said_in_its_description(path: tuple[str, ...], field: FieldInfo,
                                                                 kind: type) -> None:
    bound = _upper_bound(field)
    assert bound is not None, f"{'.'.join(path)} has no upper bound (le=…): what is the most it may be?"
    assert bound < 1e15, f"{'.'.join(path)}: {bound} is no bound an operator could mean"
    assert field.description and "at most" in field.description.lower(), \
        f"{'.'.join(path)}: its description should say its bound ('At most …')"
    if field.default is not None and isinstance(field.default, int | float):
        assert field.default <= bound  # the default stays valid


@pytest.mark.parametrize(("path", "field", "kind"), FIELDS, ids=IDS)
def test_a_value_past_the_bound_is_one_config_error_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: tuple[str, ...], field: FieldInfo, kind: type) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    huge = "1e300" if kind is float else "9" * 30  # an int setting refuses "1e300" as no integer at all
    variable = "GAMEAD_" + "__".join(p.upper() for p in path)
    monkeypatch.setenv(variable, huge)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    # "(GAMEAD_…=value)", or the variable alone under a dict's key; then the range it must be in (range46: the one
    # sentence of a number out of range, before pydantic's "Input should be less than or equal to …")
    assert f"{'.'.join(path)} ({variable}" in message, message
    assert re.search(r"\) must be (.+ to|(.+ and )?(at most|less than)) .+, not ", message), message  # polish47


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("GAMEAD_REGISTRY__TTL", "1e300", "registry.ttl"),
    ("GAMEAD_QUEUE__AGING_STEP", "1e308", "queue.aging_step"),
    ("GAMEAD_CLIENT__TIMEOUT", "1e12", "client.timeout"),
    ("GAMEAD_API__MAX_BODY_BYTES", "99999999999999999999999", "api.max_body_bytes"),
    ("GAMEAD_API__LIST_SCAN_LIMIT", "1000000000", "api.list_scan_limit"),
])
def test_the_drills_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str,
                                       named: str) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv(variable, value)
    refused = rf"^invalid configuration: {named} \({variable}=[^)]*\) must be .+ to .+, not "
    with pytest.raises(ConfigError, match=refused):
        load_settings()


def test_the_bounds_in_the_file_name_the_file_and_the_example_still_loads(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("registry:\n  ttl: 1.0e+300\n")
    with pytest.raises(ConfigError, match=r"registry\.ttl \(.*config\.yaml.*\) must be 1ms to 1d, not 1e\+300s"):
        load_settings(cfg)
    load_settings(ROOT / "config.yaml.example")  # every value the example shows is within its bound


#: the README's summary of the ceilings ("Every number has a ceiling too …"), as the words it uses for each bound
#: constant of gamead_core/config/section.py, and the settings (fnmatch patterns, as the README writes them) it
#: puts under that bound
_SUMMARY: dict[str, tuple[str, tuple[str, ...]]] = {
    "MINUTES_10": ("10 min", ("nats.*_timeout", "api.publish_timeout")),
    "HOUR": ("1 h", ("*_interval", "jobs.lease", "redis.breaker_reset", "client.timeout", "api.read_timeout",
                     "api.keep_alive_timeout")),
    "DAY": ("1 day", ("registry.ttl", "queue.ack_wait", "queue.duplicate_window", "worker.task_timeout",
                      "worker.drain_timeout", "worker.backoff_*")),
    "WEEK": ("7 days", ("queue.aging_step", "cache.ttl", "nats.give_up_after")),
    "YEARS_10": ("10 years", ("*.max_age", "jobs.retention")),
    "MIB": ("1 MiB", ("api.max_header_bytes", "api.max_request_line_bytes")),
    "GIB": ("1 GiB", ("nats.max_pending_bytes",)),
    "TIB": ("1 TiB", ("*.max_bytes",)),
    "MAX_COUNT": ("10⁹", ("*.max_msgs", "ratelimit.*")),
}
#: the other bounds the summary names
_SUMMARY_OTHERS: dict[str, float] = {"redis.*_timeout": 60, "api.max_body_bytes": 64 * 1024**2,
                                     "api.batch_max_body_bytes": 128 * 1024**2, "worker.concurrency": 1024,
                                     "queue.partitions": 64}


def test_the_readme_summary_of_the_ceilings_names_every_bound_constant_and_says_true() -> None:
    """The README's summary omitted 7 days, 1 MiB and 1 GiB (``queue.aging_step``, the request line and headers,
    ``nats.max_pending_bytes``) and put a few settings under a bound they do not have. Now: every bound constant
    of ``section.py`` is in it, in the words above, and every setting it names under a bound has that bound."""
    import fnmatch
    import re

    from gamead_core.config import section

    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    start = text.index("Every number has a ceiling too")
    summary = text[start:text.index("A `GAMEAD_*` variable that is no setting", start)]
    constants = {name for name, value in vars(section).items() if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
                 and isinstance(value, int)}
    assert constants == set(_SUMMARY), "a bound constant of section.py the README summary does not say (or gone)"
    bounds = {".".join(p): _upper_bound(f) for p, f, _ in FIELDS}
    claims = [(pattern, getattr(section, name), words) for name, (words, patterns) in _SUMMARY.items()
              for pattern in patterns] + [(pattern, bound, None) for pattern, bound in _SUMMARY_OTHERS.items()]
    for pattern, bound, words in claims:
        assert f"`{pattern}`" in summary, f"the README summary no longer names `{pattern}`"
        if words is not None:
            assert words in summary, f"the README summary does not say {words}"
        matched = [key for key in bounds if fnmatch.fnmatchcase(key, pattern)]
        assert matched, f"`{pattern}` names no setting"
        wrong = {key: bounds[key] for key in matched if bounds[key] != bound}
        assert not wrong, f"the README puts `{pattern}` at {bound:g}, but: {wrong}"


def _value_at(settings: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        settings = settings.get(name) if isinstance(settings, dict) else getattr(settings, name)
    return settings


def test_a_float_given_as_minus_zero_is_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """attack26 F9: ``GAMEAD_WORKER__LINGER_MS=-0`` was accepted and shown ``-0.0`` by ``gamead config show``;
    every float setting that takes 0 now holds +0.0 (one rule, in the sections' base)."""
    import math

    checked = []
    for path, _field, kind in FIELDS:
        if kind is not float or _DICT_KEY in path:
            continue
        drop_gamead_env(monkeypatch, tmp_path)
        monkeypatch.setenv("GAMEAD_" + "__".join(p.upper() for p in path), "-0")
        try:
            value = _value_at(load_settings(), path)
        except ConfigError:  # a setting that must be above 0
            continue
        checked.append(".".join(path))
        assert value == 0 and math.copysign(1.0, value) == 1.0, (path, value)
    assert "worker.linger_ms" in checked and len(checked) > 10, checked


def test_a_setting_in_seconds_that_cannot_be_0_is_at_least_a_millisecond(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """attack42a F4: ``GAMEAD_WORKER__TASK_TIMEOUT=1e-320`` passed ``gt=0`` and the limit never fired (29 settings
    in seconds said ``gt=0``). Now a setting in seconds takes 0 (``ge=0``: "off") or has a floor of at least
    :data:`MIN_SECONDS` (1 ms, the event loop's timer resolution), and ``1e-320`` for one is one config error
    naming it. Without the fix (``PositiveSeconds`` as ``gt=0``): fails at ``api.keep_alive_timeout``'s ``gt=0``."""
    from gamead_core.config.section import MIN_SECONDS, plus_zero

    floored = []
    for path, field, _kind in FIELDS:
        if not any(getattr(rule, "func", None) is plus_zero for rule in field.metadata):
            continue  # not a setting in seconds
        assert not any(isinstance(rule, annotated_types.Gt) for rule in field.metadata), \
            f"{'.'.join(path)}: gt=0 takes 1e-320, which no timer can wait; say PositiveSeconds (ge=MIN_SECONDS)"
        floor = max(rule.ge for rule in field.metadata if isinstance(rule, annotated_types.Ge))
        if floor == 0:
            continue
        assert floor >= MIN_SECONDS, path
        floored.append(path)
        if _DICT_KEY not in path:
            drop_gamead_env(monkeypatch, tmp_path)
            variable = "GAMEAD_" + "__".join(p.upper() for p in path)
            monkeypatch.setenv(variable, "1e-320")
            refused = rf"{'.'.join(path)} \({variable}=1e-320\) must be .+ to .+, not 1e-320"
            with pytest.raises(ConfigError, match=refused):
                load_settings()
    assert ("worker", "task_timeout") in floored and len(floored) > 30, floored
