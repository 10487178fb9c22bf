"""A number of more digits than Python converts (``sys.get_int_max_str_digits()``, 4,300) is refused as every number
past its range is (range46: ``<what> must be <lo> to <hi>, not <given>``), wherever it is typed (attack55). Before:

* a ``GAMEAD_*`` int setting or an int flag of 5,000 digits said pydantic's ``Unable to parse input string as an
  integer, exceeded maximum size`` (30 digits said ``must be 1 to 1,024, not …``);
* a config file's ``worker.concurrency: 999…`` (5,000 digits) said ``must hold a mapping of sections at the top
  level``, of a file that holds one (PyYAML's ``ValueError`` taken for a file of another shape);
* a config file's ``worker.concurrency: 0x999…`` (read, as hex has no digit limit) was ``unexpected ValueError``,
  exit 1: the refusal itself wrote the int with ``{:,}``.

The flags: ``tests/cli/test_bound_refusals.py`` (``BOUNDED``, its 5,000-digit lines)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gamead_core.bound_text import Range, given_text, is_bound_error, number_text
from gamead_core.config import load_settings
from gamead_core.errors import ConfigError
from tests.support import drop_gamead_env

DIGITS = sys.get_int_max_str_digits() + 700  # 5,000 on Python's default
LONG = "9" * DIGITS
TOO_LONG = "int_parsing_size"  # pydantic's error type of such an int (gamead_core.bound_text.TOO_LONG)
SHOWN = "9" * 40 + "…"  # a refused text is shown cut to its first 40 characters


def test_the_text_is_shown_as_typed_and_the_int_in_words() -> None:
    assert given_text(LONG) == SHOWN  # was "inf": float() of it, int() refusing its digits
    assert given_text("-" + LONG) == "-" + SHOWN[:-2] + "…"
    assert given_text("1e999") == "1e999" and given_text("inf") == "inf"  # inf as typed is inf
    assert number_text(int("f" * 5000, 16)) == "a number of ~6,021 digits"  # was ValueError
    assert number_text(-int("f" * 5000, 16)) == "a negative number of ~6,021 digits"


def test_too_long_is_past_a_bound_only_on_the_side_its_sign_has_one() -> None:
    error = {"type": TOO_LONG, "input": LONG}
    assert is_bound_error(error, Range(1, 1024))
    assert not is_bound_error(error, Range(1))  # --count: at least 1, and it is; not said "must be at least 1"
    assert is_bound_error({"type": TOO_LONG, "input": "-" + LONG}, Range(1))
    assert not is_bound_error(error)


@pytest.mark.parametrize(("value", "given"), [(LONG, SHOWN), ("-" + LONG, "-" + SHOWN[:-2] + "…")],
                         ids=["positive", "negative"])
def test_a_gamead_variable_of_5000_digits_says_its_range(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         value: str, given: str) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GAMEAD_WORKER__CONCURRENCY", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).endswith(") must be 1 to 1,024, not " + given), caught.value


@pytest.mark.parametrize(("written", "said"), [
    (LONG, f"worker.concurrency (line 2): a number of {DIGITS:,} digits, past any bound a setting has "
           f"(Python reads at most {sys.get_int_max_str_digits():,} digits)"),
    ("0x" + "f" * 5000, "must be 1 to 1,024, not a number of ~6,021 digits"),
], ids=["decimal", "hex"])
def test_a_config_file_number_of_5000_digits_is_named_with_its_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                    written: str, said: str) -> None:
    drop_gamead_env(monkeypatch, tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"worker:\n  concurrency: {written}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert said in str(caught.value) and "mapping" not in str(caught.value), caught.value


def test_a_json_file_number_of_5000_digits_is_named_with_its_line_in_gamead_words() -> None:
    """``gamead submit ad.json`` (``dlq import``, NDJSON lines alike: :func:`~gamead_cli.inputs.load_json`) said
    Python's own words, cut at 120 characters: ``not valid JSON (Exceeds the limit (4300 digits) for integer string
    conversion: value has 5000 digits; use sys.set_int_max_str_digits() t)``, on no line; then its own words, ``has
    5,000 digits; gamead reads numbers of at most 4,300 digits``; now the API's (numbers55)."""
    from gamead_cli.inputs import BadInputFile, load_json

    with pytest.raises(BadInputFile) as caught:
        load_json(f'{{"title": "T",\n"duration": {LONG}}}'.encode(), "ad.json")
    assert caught.value.format_message() == (  # the API's words of such a number (numbers55)
        f"Invalid value for FILE: ad.json:2: not valid JSON for this API: the number at byte 27 ({SHOWN[:-1]}…, "
        f"{DIGITS:,} characters) is past the range this API reads (a double's: ±1.8e308)")
    assert load_json(b'{"duration": 30, "priority": -2}', "ad.json") == {"duration": 30, "priority": -2}
