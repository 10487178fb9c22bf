"""The byte pre-filter of a repeated JSON key never misses one (:mod:`gamead_core.json_keys`).

``POST /ads`` pays for the exact check only when :func:`may_repeat` cannot rule a repeat out: a body it let
through with a repeated key would be queued with whichever value pydantic kept. Checked on ads whose texts hold
what fools a byte count (quotes, colons, the key names themselves, escapes), with a key repeated, written
plainly or with ``\\u`` escapes, and without.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gamead_core.api.routes_dlq import ImportBody, ReplayBody
from gamead_core.json_keys import has_repeat, held_keys, key_names, may_repeat, repeats, where
from gamead_core.models import AdSubmission
from tests.ad_strategies import ad_text
from tests.support import ad

KEYS = ["title", "description", "genre", "callToAction", "duration", "priority", "targetAudience",
        "visualElements", "target_audience"]
LISTS = ("targetAudience", "visualElements", "target_audience")
TRICKY = st.sampled_from(['"priority"', '\\"title": 1', "a: b", '", "priority": 1', "t\\u0069tle", "{}[],:"])


def _escaped(key: str) -> str:
    """``key`` with its first letter written as a ``\\u`` escape."""
    return f"\\u{ord(key[0]):04x}{key[1:]}"


@settings(max_examples=300)
@given(title=st.one_of(ad_text(60), TRICKY), description=st.one_of(ad_text(60), TRICKY),
       repeat=st.one_of(st.none(), st.sampled_from(KEYS)), escape=st.booleans())
def test_may_repeat_never_misses_a_repeated_key(title: str, description: str, repeat: str | None,
                                                escape: bool) -> None:
    text = json.dumps(ad(title, description=description), ensure_ascii=escape)
    if repeat is not None:  # the repeat, with a value of the field's own type, last (pydantic keeps it)
        value = {"duration": 31, "priority": 4}.get(repeat, ["x"] if repeat in LISTS else "x")
        name = _escaped(repeat) if escape else repeat
        text = text[:-1] + f', "{name}": {json.dumps(value)}' + "}"
    body = text.encode()
    try:
        parsed = AdSubmission.model_validate_json(body, strict=True)
    except ValueError:
        return  # refused for another reason: keeps its error
    exact = has_repeat(body)
    assert exact == (repeat not in (None, "target_audience"))  # another name of targetAudience: no repeat
    if exact:
        assert may_repeat(body, key_names(AdSubmission), held_keys(parsed))


def test_an_ad_without_colons_or_repeats_skips_the_exact_check() -> None:
    body = json.dumps(ad("Plain")).encode()
    parsed = AdSubmission.model_validate_json(body, strict=True)
    assert not may_repeat(body, key_names(AdSubmission), held_keys(parsed))


def test_key_names_cover_nested_models_and_open_models_have_none() -> None:
    names = key_names(ReplayBody)
    assert names is not None and b'"errorClass"' in names and b'"dryRun"' in names  # filter's, and its own
    assert key_names(ImportBody) is None  # an entry ignores unknown keys: any name may be repeated


def test_repeats_name_each_repeat_with_its_object_s_path_in_text_order() -> None:
    text = '{"ads": [{"a": 1}, {"b": {"c": 1, "c": 2}, "t\\u0069tle": 1, "title": "{\\"a\\": 1}"}], "ads": 2}'
    found = [(r.key, where(r.path)) for r in repeats(text)]
    assert found == [("c", "ads[1].b"), ("title", "ads[1]"), ("ads", "")]
    assert text[next(repeats(text)).offset:].startswith('"c": 2')


def test_the_submission_fields_with_two_names_are_found() -> None:
    from gamead_core.json_keys import two_spellings

    assert [(s.alias, s.name) for s in two_spellings(AdSubmission)] == [
        ("targetAudience", "target_audience"), ("visualElements", "visual_elements"),
        ("callToAction", "call_to_action")]


@given(text=ad_text(200) | TRICKY, escape=st.booleans(), both=st.booleans())
@settings(max_examples=200)
def test_a_field_under_both_names_is_found_exactly_whatever_the_text_and_escapes(
        text: str, escape: bool, both: bool) -> None:
    from gamead_core.json_keys import spelled_twice, two_spellings

    sent = ad("Both", description=text)
    if both:
        sent["target_audience"] = ["x"]
    body = json.dumps(sent, ensure_ascii=False)
    if escape and both:
        body = body.replace('"target_audience"', '"' + _escaped("target_audience") + '"')
    spellings = two_spellings(AdSubmission)
    exact = spelled_twice(json.loads(body), spellings) is not None
    assert exact == both
