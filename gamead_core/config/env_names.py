"""Every ``GAMEAD_*`` variable gamead knows: the settings (``GAMEAD_<SECTION>__<KEY>``, a whole section as JSON
``GAMEAD_<SECTION>``) and the few of the CLI, ``gamead up`` and the tests. Any other is refused (exit 5): a
mistyped section (``GAMEAD_WROKER__CONCURRENCY``) was ignored without a word by pydantic-settings."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gamead_core.errors import ConfigError
from gamead_core.json_keys import has_repeat, repeat_message, repeats

PREFIX = "GAMEAD_"

#: ``GAMEAD_*`` variables that are no setting, and who reads them (README: Configuration, exit codes).
OTHER_VARIABLES: Mapping[str, str] = {
    "GAMEAD_CONFIG": "the config file (as --config)",
    "GAMEAD_API_URL": "the API the CLI talks to (client.api_url)",
    "GAMEAD_TOKEN": "the API token the CLI sends (client.token)",
    "GAMEAD_DEBUG": "tracebacks for unexpected errors (as --debug)",
    "GAMEAD_PARENT_PID": "set by `gamead up` for its children: stop when it dies",
    "GAMEAD_TEST_FORKSERVER": "the test suite: 0 starts every process with a fresh interpreter",
    "GAMEAD_TEST_FORKSERVER_REPORT": "the test suite: CPU per process of the fork server",
    "GAMEAD_TEST_FORKSERVER_UP": "the test suite: 0 lets a test's `gamead up` start its children as fresh interpreters",
    "GAMEAD_TEST_TIMELINE": "the test suite: a directory for each test's wall time and CPU (tests/timeline.py)",
    "GAMEAD_BENCH_KEEP": "the benchmarks: keep their data directories",
}


#: The variables Kubernetes puts into every pod for each Service of its namespace (service links, unless the pod
#: says ``enableServiceLinks: false``): the Service ``gamead-api`` gives ``GAMEAD_API_SERVICE_HOST``,
#: ``GAMEAD_API_SERVICE_PORT[_<port name>]``, ``GAMEAD_API_PORT=tcp://…`` and ``GAMEAD_API_PORT_80_TCP[_PROTO|_PORT|
#: _ADDR]`` (kubernetes.io/docs/concepts/services-networking/service/#environment-variables); a Service named
#: ``gamead`` itself gives ``GAMEAD_SERVICE_HOST``, ``GAMEAD_PORT=tcp://…`` … (attack39b F16: those made every
#: command of a pod in its namespace exit 5). Not refused; a bare ``…_PORT`` only with a Service's value
#: (``tcp://…``), so a mistyped ``GAMEAD_API_PORT=9000`` still is.
_SERVICE_LINK = re.compile(r"GAMEAD_(\w+_)?(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)")
_SERVICE_LINK_PORT = re.compile(r"GAMEAD_(\w+_)?PORT")
_SERVICE_URL = re.compile(r"(tcp|udp|sctp)://\S+")


def _service_link(key: str, value: str) -> bool:
    return bool(_SERVICE_LINK.fullmatch(key) or (_SERVICE_LINK_PORT.fullmatch(key) and _SERVICE_URL.fullmatch(value)))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field of ``annotation`` holds (itself, in a union, or as a mapping's values); None for
    a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (dict, Mapping, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (model := _model_of(arg)) is not None:
                return model
    return None


def setting_names(model: type[BaseModel], prefix: str = PREFIX) -> set[str]:
    """Every ``GAMEAD_*`` name of a setting or section of ``model`` (upper case). Pure."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        names.add(name)
        if (sub := _model_of(field.annotation)) is not None:
            names |= setting_names(sub, name + "__")
    return names


def refuse_unknown_variables(environ: Mapping[str, str], model: type[BaseModel]) -> None:
    """Raise :class:`ConfigError` naming the first ``GAMEAD_*`` variable of ``environ`` (names compared in upper
    case, as pydantic-settings reads them) that is neither a setting of ``model``, nor below one of its sections
    (``GAMEAD_QUEUE__NOPE``: the section refuses the key itself, naming it), nor one of :data:`OTHER_VARIABLES`,
    nor a Kubernetes service link (:data:`_SERVICE_LINK`), with the nearest known name when one is close
    (difflib)."""
    known = setting_names(model) | set(OTHER_VARIABLES)
    # a wrong key inside a known section is refused by the section itself (extra="forbid"), naming the key
    sections = tuple(f"{PREFIX}{name.upper()}__" for name in model.model_fields)
    unknown = sorted(
        key for key in environ
        if key.upper().startswith(PREFIX) and key.upper() not in known and not key.upper().startswith(sections)
        and not _service_link(key, environ[key])
    )
    if not unknown:
        return
    key = unknown[0]
    tails = {name[len(PREFIX):]: name for name in known}
    close = difflib.get_close_matches(key.upper()[len(PREFIX):], sorted(tails), n=1, cutoff=0.75)
    hint = f" (did you mean {tails[close[0]]}?)" if close else ""
    more = f" (and {len(unknown) - 1} more: {', '.join(unknown[1:4])}{'…' if len(unknown) > 4 else ''})" \
        if len(unknown) > 1 else ""
    raise ConfigError(f"invalid configuration: environment variable {key[:60]} is no gamead setting{hint}{more}; "
                      "a setting is GAMEAD_<SECTION>__<KEY> (e.g. GAMEAD_WORKER__CONCURRENCY): unset it or fix it")

def refuse_repeated_keys(environ: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` naming the first ``GAMEAD_*`` variable holding JSON (a section or a list,
    ``GAMEAD_API='{"port": 8080, "port": 9090}'``) whose objects name a key twice: pydantic-settings would keep the
    last without a word, where the config file refuses the same (I-JSON, RFC 7493 §2.3; attack36 F6)."""
    for key in sorted(environ):
        value = environ[key]
        if key.upper().startswith(PREFIX) and value.lstrip()[:1] in ("{", "[") and has_repeat(value):
            repeat = next(repeats(value), None)
            said = repeat_message(repeat) if repeat is not None else "a key appears twice in one object"
            raise ConfigError(f"invalid configuration: environment variable {key[:60]}: {said}; keep one (the "
                              "last would win without a word)")
