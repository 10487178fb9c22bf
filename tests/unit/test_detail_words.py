"""Every 422 ``validation_failed`` an API body earns speaks gamead's words, never pydantic's (words58: an ad file with
only a title and genre was refused ``description: Field required; callToAction: Field required; duration: Field
required``; ``Input should be …``, ``String should have …`` and ``Extra inputs are not permitted`` reached API
messages the same way). Each body model of the API is given, field by field, a value of every JSON kind and size,
and every message and detail read."""

from __future__ import annotations

import json
import re
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from gamead_core.api.errors import ValidationFailed
from gamead_core.api.body import parse_body
from gamead_core.api.routes_dlq import ImportBody, PurgeBody, ReplayBody
from gamead_core.api.routes_scale import OverrideBody
from gamead_core.models import NewAd

#: pydantic's phrases (and its ``Value error, `` prefix) that must not reach a client
PYDANTIC = re.compile(r"Field required|should (be|have|match)|Extra inputs|not permitted|Value error|Assertion failed|"
                      r"valid (string|integer|number|list|dictionary|boolean|datetime)")
#: a value of each JSON kind, and past every size a body model bounds
VALUES: list[Any] = [None, True, "x", " ", "", "x" * 3000, 1.5, -1, 0, 10**9, [], ["x"] * 300, [1], {}, {"a": 1},
                     "bogus-time", "2026-13-45T99:00:00"]
AD = {"title": "Sky Saga", "description": "d", "genre": "RPG", "callToAction": "Play", "duration": 30}
BODIES: dict[type[BaseModel], dict[str, Any]] = {
    NewAd: AD, OverrideBody: {"replicas": 1, "forSeconds": 60},
    ReplayBody: {"all": True, "filter": {"priority": 1}}, PurgeBody: {"ids": ["x"], "confirm": "yes"},
    ImportBody: {"entries": [{"adId": "x", "title": "t", "ad": {"title": "t"}}]},
}


def _refusals(model: type[BaseModel], body: dict[str, Any]) -> list[str]:
    """Every text a client reads of ``body``'s refusal (its message, its details' ``msg``); [] if it is taken."""
    try:
        parse_body(json.dumps(body).encode(), model, 1 << 20)
    except ValidationFailed as exc:
        return [exc.message, *(d["msg"] for d in exc.details or [])]
    except Exception:  # noqa: BLE001 - another refusal (ambiguous_field, invalid_json) is not this test's
        return []
    return []


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The body models an annotation holds (``FilterBody | None``, ``list[ImportedEntry]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _variants(model: type[BaseModel], base: dict[str, Any]) -> list[dict[str, Any]]:
    """``base`` with each field of ``model`` (and of the objects nested in it) set to each of :data:`VALUES`, an
    unknown key added, and emptied."""
    out: list[dict[str, Any]] = [{}, {**base, "bogus": 1}]
    for name, field in model.model_fields.items():
        key = field.alias or name
        out += [{**base, key: value} for value in VALUES]
        inner = base.get(key)
        for sub in _models(field.annotation):
            if isinstance(inner, dict):
                out += [{**base, key: v} for v in _variants(sub, inner)]
            elif isinstance(inner, list) and inner and isinstance(inner[0], dict):
                out += [{**base, key: [v]} for v in _variants(sub, inner[0])]
    return out


@pytest.mark.parametrize("model", list(BODIES), ids=lambda m: m.__name__)
def test_no_pydantic_phrase_reaches_a_validation_failed_answer(model: type[BaseModel]) -> None:
    said = [text for body in _variants(model, BODIES[model]) for text in _refusals(model, body)]
    assert len(said) > 50, model
    spoken = sorted({s for s in said if PYDANTIC.search(s)})
    assert not spoken, spoken[:10]


def test_a_file_ad_of_a_title_and_a_genre_names_what_it_lacks_in_words() -> None:
    said = _refusals(NewAd, {"title": "Sky Saga", "genre": "RPG"})
    assert said[0] == ("the request is invalid: description: required, not given; callToAction: required, not "
                       "given; duration: required, not given"), said
    assert _refusals(NewAd, {**AD, "duration": 601})[1] == "must be at most 600"
    assert _refusals(NewAd, {**AD, "title": "x" * 201})[1] == "must have at most 200 characters"
    assert _refusals(NewAd, {**AD, "duration": "30"})[1] == "must be a whole number"
    assert _refusals(NewAd, {**AD, "colour": "red"})[1] == "unknown field 'colour'"


def test_no_pydantic_phrase_reaches_a_flag_refusal() -> None:
    """Every setting a flag may feed, given each of :data:`VALUES`: the refusal is in gamead's words (19 of 539
    distinct refusals were pydantic's before: ``Input should be 'json' or 'text'``, ``… a valid boolean, unable to
    interpret input``)."""
    import typer

    from gamead_cli.flag_settings import check_flags
    from gamead_core.config import GameadSettings

    said: set[str] = set()
    for section, field in GameadSettings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for key in model.model_fields:
            for value in VALUES:
                try:
                    check_flags({section: {key: value}})
                except typer.BadParameter as exc:
                    said.add(str(exc.message))
    assert len(said) > 100
    spoken = sorted(s for s in said if PYDANTIC.search(s))
    assert not spoken, spoken[:10]


def test_an_unreadable_record_is_named_in_gamead_words() -> None:
    """``record_unreadable`` (409) and the doctor say why a stored record cannot be read: ``title: required, not
    given`` (``title: Field required`` before)."""
    from pydantic import ValidationError

    from gamead_core.models import AdRecord
    from gamead_core.store.unreadable import why_unreadable

    try:
        AdRecord.model_validate({})
    except ValidationError as exc:
        said = why_unreadable(exc)
    assert said.endswith(": required, not given") and not PYDANTIC.search(said), said
