"""The ``Idempotency-Key`` header read as the draft writes it (attack30a F7) and the keys a batch derives from it
(F5): :mod:`gamead_core.api.key_header`, :mod:`gamead_core.api.batch_keys`. Pure."""

from __future__ import annotations

import pytest

from gamead_core.api.batch_keys import check_derivable, derived, longest_header
from gamead_core.api.errors import DuplicateHeader, InvalidIdempotencyKey
from gamead_core.api.key_header import header_key, sf_string


def key_of(value: bytes) -> str | None:
    return header_key([(b"content-type", b"application/json"), (b"idempotency-key", value)])


def test_a_quoted_key_and_the_bare_key_are_one_key() -> None:
    assert key_of(b'"order-7"') == key_of(b"order-7") == "order-7"
    assert key_of(b'"a\\"b\\\\c"') == 'a"b\\c'  # \" and \\ unescaped
    assert key_of(b'a"b') == 'a"b'  # a bare value holding a quote stays as it is
    assert header_key([(b"content-type", b"text/plain")]) is None


@pytest.mark.parametrize(("value", "why"), [
    (b'"open', "closing quote"),
    (b'"a\\nb"', "backslash escapes only"),
    (b'"a\\', "backslash escapes only"),
    (b'"a";p=1', "nothing may follow the closing quote"),
    (b'""', "1-200 characters (got 0)"),
    (b'" a"', "cannot begin or end with a space"),
    (b'"\xd0\xba"', "U+043A"),
])
def test_an_invalid_quoted_key_is_refused(value: bytes, why: str) -> None:
    with pytest.raises(InvalidIdempotencyKey) as refused:
        key_of(value)
    assert why in refused.value.message and refused.value.details == {"header": "Idempotency-Key"}


def test_a_comma_or_a_second_header_stays_duplicate_header() -> None:
    with pytest.raises(DuplicateHeader):
        key_of(b'"a,b"')
    with pytest.raises(DuplicateHeader):
        header_key([(b"idempotency-key", b"a"), (b"idempotency-key", b'"a"')])


def test_sf_string_reads_up_to_its_closing_quote() -> None:
    assert sf_string('"x y"') == "x y"
    with pytest.raises(ValueError, match="closing quote"):
        sf_string('"x\\"')


def test_the_header_s_longest_key_depends_on_the_batch_s_last_index() -> None:
    """``K-<last index>`` stays within 200 characters."""
    assert [longest_header(n) for n in (1, 10, 11, 100, 101, 500)] == [198, 198, 197, 197, 196, 196]
    check_derivable(None, 500)
    check_derivable("k" * 198, 10)
    with pytest.raises(InvalidIdempotencyKey) as refused:
        check_derivable("k" * 198, 11)
    assert refused.value.details == {"header": "Idempotency-Key", "max": 197}
    assert "at most 197" in refused.value.message


def test_derived_keys_fill_the_keyless_items_only() -> None:
    error = {"error": {"code": "validation_failed"}}
    items = [("ad0", None), error, ("ad2", "own"), ("ad3", None)]
    assert derived(items, "K") == [("ad0", "K-0"), error, ("ad2", "own"), ("ad3", "K-3")]
    assert derived(items, None) is items
