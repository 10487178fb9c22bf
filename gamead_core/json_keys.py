"""A name repeated in one JSON object (``{"title": "a", "title": "b"}``): found, after a cheap test rules it out.

I-JSON (RFC 7493 §2.3): the names of an object MUST be unique (RFC 8259 §4: SHOULD). Parsers disagree on such an
object (pydantic and orjson keep the last value, others the first), so a proxy in front of gamead and gamead
would read two different ads from one body (say, two ``priority``): the API refuses it (400 ``invalid_json``,
:mod:`gamead_core.api.body`) and so does the CLI, for every input file (:mod:`gamead_cli.inputs`).

Three steps, cheapest first, so that the hot path (``POST /ads``) pays a few ``bytes.count`` calls:

* :func:`may_repeat`: bytes only (~0.3 µs for an ad): no more ``:`` than the keys the parsed body holds, or no
  more ``"title"`` (each of :func:`key_names` of the model read) and no ``\\u`` escape, rule a repeat out; it
  never misses one and may say yes for none (a text holding ``:``);
* :func:`has_repeat`: exact, one ``json.loads`` with an ``object_pairs_hook`` (~15-20 µs per KB);
* :func:`repeats`: where (key, path, offset), on the error path only (a Python tokenizer).
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pydantic is imported by the callers that name a model: the CLI's reading of a file does not
    from pydantic import BaseModel


class RepeatedKey(ValueError):
    """Raised by :func:`unique_pairs` for an object naming ``key`` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object as a dict; raises :class:`RepeatedKey` naming the first
    name it holds twice."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return obj


def has_repeat(data: str | bytes) -> bool:
    """Whether any object of the JSON text ``data`` names a key twice. Exact; False for text that is not JSON
    (the caller's parser refused it already, or will)."""
    try:
        json.loads(data, object_pairs_hook=unique_pairs)
    except RepeatedKey:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def may_repeat(data: bytes, names: tuple[bytes, ...] | None, held: int) -> bool:
    """Whether the JSON text ``data`` may name a key twice in one object, by counting bytes. Pure, ~1 µs a KB.

    ``held``: how many distinct keys the parsed text surely holds, objects and nested ones together (a lower
    bound: the fields set of the outer model, :func:`held_keys`). ``names``: every key the text may hold, quoted
    (``b'"title"'``, :func:`key_names`); None when any name may occur. Each key is followed by a ``:``, so no
    more colons than ``held`` rule a repeat out; else no more occurrences of ``names`` than ``held`` and no
    ``\\u`` (a name may be escaped: ``"t\\u0069tle"``). Never False for a text with a
    repeated key (of ``names``, if given); True also for one merely holding ``:`` or ``"title"`` in a value (then
    ask :func:`has_repeat`)."""
    if data.count(b":") <= held:
        return False
    if names is None or b"\\u" in data:
        return True
    return sum(map(data.count, names)) > held


@functools.cache
def only_drops_keys(validator: Any) -> Any:
    """Mark a ``before`` model validator (the function, under ``@classmethod``) as one that only drops keys of its
    input, never adds one: the fields set still are keys the input held (:func:`held_keys`)."""
    validator.__gamead_only_drops_keys__ = True
    return validator


@functools.cache
def _set_by_input(model: type[BaseModel]) -> bool:
    """Whether ``model``'s fields set are the keys of its input (no ``before``/``wrap`` model validator adds
    any: those marked :func:`only_drops_keys` add none)."""
    return all(d.info.mode == "after" or getattr(d.func, "__gamead_only_drops_keys__", False)
               for d in model.__pydantic_decorators__.model_validators.values())


def held_keys(value: BaseModel) -> int:
    """How many distinct keys the outer object read into ``value`` surely held: its fields set (0 when a model
    validator may have set fields the input did not name). For :func:`may_repeat`'s ``held``."""
    return len(value.__pydantic_fields_set__) if _set_by_input(type(value)) else 0


@functools.cache
def key_names(model: type[BaseModel]) -> tuple[bytes, ...] | None:
    """Every object key a JSON text validated by ``model`` may hold, quoted as in JSON (``b'"title"'``): the
    names and aliases of its fields and of the fields of the models it nests. None when the keys are open (a
    model that does not forbid unknown fields, a dict or ``Any`` field): then :func:`may_repeat` says True."""
    found: set[str] = set()
    if not _collect(model, found, set()):
        return None
    return tuple(sorted(f'"{name}"'.encode() for name in found))


def _collect(model: type[BaseModel], found: set[str], visited: set[type]) -> bool:
    if model in visited:
        return True
    visited.add(model)
    config = model.model_config
    if config.get("extra") != "forbid":
        return False
    by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
    for name, field in model.model_fields.items():
        alias = field.validation_alias if field.validation_alias is not None else field.alias
        if alias is not None and not isinstance(alias, str):
            return False  # AliasChoices / AliasPath: not enumerated here
        if alias is None or by_name:
            found.add(name)
        if alias is not None:
            found.add(alias)
        if not _types_closed(field.annotation, found, visited):
            return False
    return True


def _types_closed(annotation: Any, found: set[str], visited: set[type]) -> bool:
    """Whether every object ``annotation`` may hold has its keys in ``found`` (models added to it as met)."""
    from pydantic import BaseModel

    if annotation is Any:
        return False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _collect(annotation, found, visited)
    origin = typing.get_origin(annotation)
    if any(isinstance(t, type) and issubclass(t, Mapping) for t in (origin, annotation)):
        return False  # a dict's keys are anything
    args = typing.get_args(annotation) if origin is not None or isinstance(annotation, types.UnionType) else ()
    return all(_types_closed(arg, found, visited) for arg in args)


class Repeat(NamedTuple):
    """A key met a second time in one object: ``path`` of that object (``("ads", 2)``; ``()`` for the outer one),
    ``offset`` of the second occurrence in the text (characters of a ``str``, bytes of ``bytes``)."""

    key: str
    path: tuple[str | int, ...]
    offset: int


#: a string, or a structural character, of JSON text (anything else, numbers and literals, is skipped)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],]', re.DOTALL)


def repeats(text: str) -> Iterator[Repeat]:
    """Each repeated key of the JSON text ``text``, in text order (a key met a third time is met again). For the
    error path: a Python tokenizer (``text`` must be JSON; what it yields for other text means nothing)."""
    # per open container: [keys or None (an array), path, next item index, expecting a key, last key]
    stack: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        top = stack[-1] if stack else None
        if token in ("{", "["):
            path: tuple[str | int, ...] = ()
            if top is not None:
                path = (*top[1], top[4] if top[0] is not None else top[2])
            stack.append([set() if token == "{" else None, path, 0, token == "{", None])
        elif token in ("}", "]"):
            stack.pop()
        elif token == ",":
            if top is not None:
                top[2] += 1
                top[3] = top[0] is not None
        elif top is not None and top[3]:  # a key
            key = json.loads(token)
            if key in top[0]:
                yield Repeat(key, top[1], match.start())
            top[0].add(key)
            top[3], top[4] = False, key


def where(path: tuple[str | int, ...]) -> str:
    """``path`` as jq writes it without its leading dot: ``ads[2].ad``; ``""`` for the outer object."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def repeat_message(repeat: Repeat) -> str:
    """``the key "priority" appears twice in one object (I-JSON, RFC 7493 §2.3)``, with ``at ads[2]`` when the
    object is not the outer one. The key as a JSON string in ASCII (no control or bidi character reaches a
    terminal), its first 80 characters."""
    at = f" at {where(repeat.path)}" if repeat.path else ""
    key = json.dumps(repeat.key[:80]) + ("…" if len(repeat.key) > 80 else "")
    return f"the key {key} appears twice in one object{at} (I-JSON, RFC 7493 §2.3)"


def repeat_details(repeat: Repeat) -> dict[str, str]:
    """An API error's ``details`` for ``repeat``: ``key`` and ``at`` (the object's path, ``""`` for the outer
    one), each cut to 200 characters."""
    return {"key": repeat.key[:200], "at": where(repeat.path)[:200]}


class Spelling(NamedTuple):
    """A field an object may give under either of two names (pydantic ``populate_by_name``): its JSON name
    ``alias`` (``targetAudience``) and its Python ``name`` (``target_audience``)."""

    alias: str
    name: str


@functools.cache
def two_spellings(model: type[BaseModel]) -> tuple[Spelling, ...]:
    """The fields of ``model`` (its own, not those of models it nests) that an input may name two ways: a string
    alias other than the field's name, with names accepted too (``populate_by_name``/``validate_by_name``);
    ``()`` when names are not accepted."""
    config = model.model_config
    if not (config.get("populate_by_name") or config.get("validate_by_name")):
        return ()
    found = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias if field.validation_alias is not None else field.alias
        if isinstance(alias, str) and alias != name:
            found.append(Spelling(alias, name))
    return tuple(found)


def one_name_per_field(model: type[BaseModel], data: Any) -> Any:
    """``data`` unchanged, for a ``model_validator(mode="before")`` of ``model``; raises ``ValueError``
    (:func:`twice_message`) when ``data`` is an object giving a field of ``model`` under both its names. For the
    models a client's object may be nested in (an ad in a DLQ import entry, a replay's filter), where the body's
    own check (:func:`spelled_twice`, top level only) cannot see it: pydantic keeps one name and ignores the other
    or calls it unknown (attack27b F3, F4). A few dict lookups."""
    if isinstance(data, Mapping):
        twice = spelled_twice(data, two_spellings(model))
        if twice is not None:
            raise ValueError(twice_message(twice))
    return data


def spelled_twice(obj: Mapping[str, Any], spellings: tuple[Spelling, ...]) -> Spelling | None:
    """The first field of ``spellings`` that the decoded object ``obj`` gives under both its names; None if
    none. Exact. Which one a parser would keep is a guess (pydantic keeps the alias's, refusing the name as an
    unknown field when unknown fields are forbidden), so the API and the CLI refuse it: :func:`twice_message`."""
    return next((s for s in spellings if s.alias in obj and s.name in obj), None)


#: the API's error code (400) and the CLI's word for an object giving one field under both its names
TWICE_CODE = "ambiguous_field"


def twice_message(spelling: Spelling) -> str:
    """``the field "targetAudience" is given twice, as "targetAudience" and as "target_audience": give one of
    the two names`` for ``spelling``."""
    return (f'the field "{spelling.alias}" is given twice, as "{spelling.alias}" and as "{spelling.name}": '
            "give one of the two names")


def twice_details(spelling: Spelling) -> dict[str, Any]:
    """An API error's ``details`` for ``spelling``: ``field`` (the JSON name) and ``keys`` (both names)."""
    return {"field": spelling.alias, "keys": [spelling.alias, spelling.name]}
