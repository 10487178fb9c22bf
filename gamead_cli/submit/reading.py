"""The ads ``gamead submit`` sends, read from their source: one JSON file (an ad or an array of ads), an NDJSON file
or stdin read lazily, flags, or ``--count`` generated ads. Bad input is refused here (exit 2) before anything is
sent; a bad NDJSON line after the first stands as a :class:`GameadError` in its ad's place."""

from __future__ import annotations

import codecs
import itertools
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import typer

from gamead_cli.ad_fields import spelled_twice_problem, with_overrides
from gamead_cli.generate import generate_ads
from gamead_cli.submit.feeding import StreamLines
from gamead_cli.inputs import (
    BadInputFile,
    TooLarge,
    bounded_lines,
    input_name,
    json_line,
    load_json,
    open_input,
)
from gamead_core.errors import GameadError
from gamead_core.models import has_words
from gamead_core.safe_text import REFUSED

#: Largest ad file read (bytes). The API takes 64 KiB bodies by default; `submit /dev/zero` must end.
MAX_AD_FILE_BYTES = 1024 * 1024
#: Deepest nesting accepted in an ad file: an ad is an object of strings and lists of strings (depth 2).
MAX_AD_DEPTH = 16
#: Defaults of an ad built from flags (only --title and --genre are needed).
FLAG_DEFAULTS: dict[str, Any] = {"callToAction": "Play now", "duration": 30}
#: What an input without an ad is refused with (exit 2), whatever its format: an empty file or stdin, only blank
#: lines, an empty array (attack45 F12: ``sent 0`` exit 0, ``holds an empty array``, ``not valid JSON`` before)
NO_AD = "holds no ad"


def json_kind(value: Any) -> str:
    """What JSON calls decoded ``value`` (``a string``, ``a number``, ``true``, ``null``…), for a message: Python's
    type names (``not str``) are not the input's (attack45 F12). Pure."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    kinds = ((str, "a string"), ((int, float), "a number"), (list, "an array"), (dict, "an object"))
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _read_capped(source: str) -> bytes:
    """At most MAX_AD_FILE_BYTES + 1 bytes of ``source`` (``-`` = stdin). Missing or unreadable: bad usage (exit
    2, :func:`gamead_cli.inputs.open_input`)."""
    fh = open_input(source)
    try:
        data: bytes | str = fh.read(MAX_AD_FILE_BYTES + 1)
        return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data  # a text stdin (tests)
    finally:
        if source != "-":
            fh.close()


def load_ad_file(source: str) -> dict[str, Any]:
    """Read one ad (a JSON object) from a file path, or from stdin when ``source`` is ``-``.

    Reads at most :data:`MAX_AD_FILE_BYTES`. A missing or unreadable file, or content that is not one JSON
    object of finite numbers nested at most :data:`MAX_AD_DEPTH` deep, is bad input: exit 2
    (:class:`gamead_cli.inputs.BadInputFile`, the README's exit codes).
    """
    data = load_ad_input(source)
    if not isinstance(data, dict):
        raise BadInputFile(input_name(source), f"must hold one JSON object (the ad), not {json_kind(data)}")
    return data


def ads_of_array(source: str, ads: list[Any], overrides: Mapping[str, Any]) -> list[Labeled]:
    """The ads of a JSON file holding an array, each labelled with its jq path (``ads.json[0]``, 0-based) and
    ``overrides`` applied. Pure. Raises :class:`BadInputFile` (exit 2, nothing sent) for an empty array (NO_AD) or an
    element that is not a JSON object: the whole file is read already, so it is refused whole."""
    where = input_name(source)
    if not ads:
        raise BadInputFile(where, NO_AD)
    for n, item in enumerate(ads):
        if not isinstance(item, dict):
            raise BadInputFile(f"{where}[{n}]", f"is {json_kind(item)}, not an ad: the file must hold one "
                               "JSON object (an ad) or an array of them")
        if (twice := spelled_twice_problem(item)) is not None:
            raise BadInputFile(f"{where}[{n}]", twice)
    return [Labeled(f"{where}[{n}]", with_overrides(item, overrides)) for n, item in enumerate(ads)]


def load_ad_input(source: str) -> dict[str, Any] | list[Any]:
    """:func:`load_ad_file`, also taking a JSON array of ads (sent as a batch, like an NDJSON file): the decoded
    object or array. Raises as :func:`load_ad_file` for anything else."""
    where = input_name(source)
    raw = _read_capped(source)
    ndjson = ("give --ndjson -" if source == "-" else "name the file *.ndjson or give --ndjson")  # what sends many
    if len(raw) > MAX_AD_FILE_BYTES:  # an array is read whole too: its bound said, and how to send it (attack60)
        kib = MAX_AD_FILE_BYTES // 1024
        array = raw.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"["
        raise BadInputFile(where, f"larger than {kib} KiB: " + (
            f"a JSON array of ads is read whole, at most {kib} KiB; for more ads, one a line (jq -c '.[]' writes "
            f"them so): {ndjson}" if array else f"an ad is a small JSON object (many ads, one a line: {ndjson})"))
    if not raw.removeprefix(codecs.BOM_UTF8).strip():  # empty, or only blanks: no ad, not "not valid JSON"
        raise BadInputFile(where, NO_AD)
    try:
        data = load_json(raw, where)
    except BadInputFile as exc:
        if "nested too deeply" in exc.problem:
            raise BadInputFile(where, f"nested too deeply to be an ad (at most {MAX_AD_DEPTH} levels)") from None
        if "(Extra data" in exc.problem:  # a second JSON value after the first: ads one a line, read as one ad
            raise BadInputFile(where, f"{exc.problem}: several ads, one a line? {ndjson}", exc.line) from None
        raise
    if not isinstance(data, (dict, list)):
        raise BadInputFile(where, f"must hold one JSON object (the ad) or an array of them, not {json_kind(data)}")
    if _depth(data) > MAX_AD_DEPTH + isinstance(data, list):
        raise BadInputFile(where, f"nested too deeply to be an ad (at most {MAX_AD_DEPTH} levels)")
    if isinstance(data, dict) and (twice := spelled_twice_problem(data)) is not None:
        raise BadInputFile(where, twice)  # one field under both its names: which counts would be a guess
    return data


#: Longest NDJSON line read (bytes): an ad is far smaller (the API takes 64 KiB bodies by default).
MAX_NDJSON_LINE_BYTES = 64 * 1024
#: file names read as NDJSON (one ad per line) without --ndjson
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def is_ndjson(source: str | None, flag: bool) -> bool:
    return flag or (source is not None and source.endswith(NDJSON_SUFFIXES))


def _open_lines(source: str) -> Any:
    """The lines of ``source``: stdin with a descriptor (a pipe, a terminal, ``< file``) is read by
    :class:`~gamead_cli.submit.feeding.StreamLines` (a thread may read it: ``gamead submit --ndjson -``), any other
    input by :func:`~gamead_cli.inputs.open_input`."""
    if source == "-":
        try:
            return StreamLines(sys.stdin.fileno())
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's stdin)
            pass
    return open_input(source, verb="gamead submit --ndjson")  # a FIFO's hint: stdin read as NDJSON too


#: a line longer than MAX_NDJSON_LINE_BYTES is rejected and skipped to its end, but no further than this: then the
#: rest of the file is not read (named in the summary)
MAX_NDJSON_SKIP_BYTES = 64 * 1024**2
#: an NDJSON file larger than this is not counted first: its progress bar has no total (review14b: a valid line
#: and a 1 TiB sparse hole kept `gamead submit` reading to count before it sent anything)
COUNT_MAX_BYTES = 256 * 1024**2


def count_ndjson(source: str) -> int | None:
    """Lines holding something in an NDJSON file (for the progress bar, and the ads a stop leaves unsent); None
    for stdin or a file of more than :data:`COUNT_MAX_BYTES`. Counted a block of bytes at a time
    (:func:`gamead_cli.blank_lines.count_holding`: C passes, whatever the lines), so the count before the first
    send is bounded by bytes (attack40a F3: a Python step a line, 10,000,000 blank lines were counted for ~25 s
    before any ad was sent, a 256 MiB file of them for ~10 min)."""
    from gamead_cli.blank_lines import count_holding

    if source == "-":
        return None
    with _open_lines(source) as fh:
        try:
            if os.fstat(fh.fileno()).st_size > COUNT_MAX_BYTES:
                return None
        except (OSError, ValueError, AttributeError):  # not a real file (tests): counted
            pass
        return count_holding(fh)


class InputStopped(OSError):
    """The input is not read on past a line (longer than :data:`MAX_NDJSON_SKIP_BYTES`, already rejected as too
    long): ``gamead submit`` sends what it read, and its summary says where it stopped (``inputError``, its text
    this error's). Before (attack38b F1), that line was rejected a second time and the rest named nowhere but there:
    ``sent: 3``, two rejections for one line, of a file whose third line was never read."""


class Labeled(NamedTuple):
    """An ad (or the :class:`GameadError` standing for an unreadable one) and where it came from
    (``ads.ndjson:2``), so a rejection can name it."""

    where: str
    ad: Mapping[str, Any] | GameadError


def read_ndjson(source: str, overrides: Mapping[str, Any]) -> Iterator[Labeled]:
    """The ads of an NDJSON file (``-`` = stdin), one JSON object a line, read lazily (memory stays flat whatever the
    file's size: :func:`gamead_cli.inputs.bounded_lines`), with ``overrides`` applied to each, each labelled
    ``FILE:LINE``. Blank lines are skipped, a run of them in bulk (attack40a F3). The first line holding something
    must be strict JSON in UTF-8 (:func:`gamead_cli.inputs.json_line`, a UTF-8 BOM dropped), else the file is not
    NDJSON and is refused whole, as an ad file that is not JSON is: :class:`gamead_cli.inputs.BadInputFile` (exit
    2) when that line is read (:func:`first_read` makes it before anything is sent). After it, a line that is not
    JSON (``NaN`` and ``Infinity`` are not JSON), not UTF-8, or longer than :data:`MAX_NDJSON_LINE_BYTES`, and any
    line that is not one JSON object, comes as a :class:`GameadError` (code ``invalid_json``) in the ad's place:
    it is counted as rejected, named, and the other lines go on (a stream is not held back for one bad ad) — but
    past a too-long line longer than :data:`MAX_NDJSON_SKIP_BYTES` nothing more is read: :class:`InputStopped`. An
    ad giving a field under both its names (:func:`gamead_cli.ad_fields.spelled_twice_problem`) is refused the
    same way: the file whole on its first line, else that ad (code ``ambiguous_field``)."""
    where = input_name(source)
    first = True
    with _open_lines(source) as fh:
        lines = bounded_lines(fh, MAX_NDJSON_LINE_BYTES, max_skip=MAX_NDJSON_SKIP_BYTES, skip_blank=True)
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                if first:  # empty, or only blank lines: refused as an empty array is, nothing sent (exit 2)
                    raise BadInputFile(where, NO_AD) from None
                return
            except TooLarge as exc:  # a line too long to skip (a sparse hole): it was rejected as it was read;
                raise InputStopped(str(exc)) from None  # the rest is not read, and the summary says so (attack38b F1)
            label = f"{where}:{number}"
            if line is not None and not line.strip():
                continue
            try:
                data = json_line(number, line, where, MAX_NDJSON_LINE_BYTES)
            except BadInputFile as exc:
                if first:  # not JSON Lines at all (a YAML file, pretty-printed JSON…): refused whole
                    raise
                yield Labeled(label, _bad_line(_line_problem(exc.problem)))
                continue
            was_first, first = first, False
            if not isinstance(data, dict) or _depth(data) > MAX_AD_DEPTH:
                yield Labeled(label, _bad_line(_not_an_ad(data)))
                continue
            if (twice := spelled_twice_problem(data)) is not None:
                if was_first:  # as a first line naming a key twice: the file is refused whole, nothing sent
                    raise BadInputFile(where, twice, number)
                yield Labeled(label, _Ambiguous(twice))  # as a later one: this ad rejected, the others sent
                continue
            yield Labeled(label, with_overrides(data, overrides))


def _not_an_ad(data: object) -> str:
    """What a rejected NDJSON line that is JSON but no ad says; an array is named with the way to send one."""
    if isinstance(data, list):
        return ("a JSON array, not one JSON object (an ad): NDJSON holds one ad a line; a file holding one array "
                "of ads is sent as such when it is not read as NDJSON (named *.json, no --ndjson)")
    return f"{json_kind(data)}, not one JSON object (an ad)"  # a string, a number, null (regress45: JSON's words)


def _line_problem(problem: str) -> str:
    """What a rejected NDJSON line's summary says (``not valid JSON (…)``; an ad is small, a file is UTF-8)."""
    if problem.startswith("longer than"):
        return f"{problem} (an ad is a small JSON object)"
    return problem.replace("save it as UTF-8", "save the file as UTF-8")


def first_read(items: Iterator[Labeled]) -> Iterator[Labeled]:
    """``items`` with its first item read at once (so :func:`read_ndjson` refuses a file that is not UTF-8
    before any request is sent or a progress bar drawn); the same items, in order."""
    head = next(items, None)
    return items if head is None else itertools.chain([head], items)


class _BadLine(GameadError):
    """A line of an NDJSON input that is not one JSON object (counted as rejected ``invalid_json``)."""

    code = "invalid_json"


class _Ambiguous(GameadError):
    """A line of an NDJSON input giving one field under both its names (counted as rejected
    ``ambiguous_field``, the API's code for it)."""

    code = "ambiguous_field"


def _bad_line(message: str) -> GameadError:
    return _BadLine(message)


def complete_flag_ad(fields: dict[str, Any]) -> dict[str, Any]:
    """An ad built from flags alone, with defaults for what was not given. Needs title and genre.

    Raises ``typer.BadParameter`` (exit 2) naming the missing flags.
    """
    missing = [flag for flag, key in (("--title", "title"), ("--genre", "genre")) if not fields.get(key)]
    if missing:
        raise typer.BadParameter(
            f"an ad built from flags needs {' and '.join(missing)} (the rest has defaults), "
            "or give a JSON file", param_hint=" / ".join(missing))
    if "description" not in fields and not has_words(str(fields["title"]), ""):  # the made-up one's words are not
        raise typer.BadParameter(  # the user's: the API's no-letters rule must judge what was typed (attack29c F4)
            f"the title {fields['title']!r} has no letters and no --description was given: the analyser would have "
            "no words of yours to analyse", param_hint="--title / --description")
    ad = {**FLAG_DEFAULTS, **fields}
    # what the API refuses of the title and genre, not in the description made up: controls (attack47 F8), length
    title, genre = (REFUSED.sub("", str(fields[key]))[:cut] for key, cut in (("title", 200), ("genre", 50)))
    ad.setdefault("description", f"{title}: {_a(genre)} game.")
    return ad


def _a(word: str) -> str:
    """``a Strategy``, ``an Idle``, ``an RPG``, ``a MOBA``: the article by the word's sound, for the description made
    up from ``--genre`` (regress41: the README's ``--genre RPG`` was analysed as "Sky Saga: a RPG game."). A vowel
    letter, or an initialism of at most 3 capitals (read letter by letter) whose first letter's name starts with a
    vowel sound (F, H, L, M, N, R, S, X). Pure."""
    first = word[:1]
    initialism = 1 < len(word) <= 3 and word.isupper()
    vowel = first in "AEFHILMNORSX" if initialism else first.lower() in "aeiou"
    return f"{'an' if first and vowel else 'a'} {word}"


def ad_from_flags(
    *,
    title: str | None = None,
    description: str | None = None,
    genre: str | None = None,
    audience: list[str] | None = None,
    visual: list[str] | None = None,
    cta: str | None = None,
    duration: int | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The wire fields (camelCase) set by flags; unset flags are left out so they don't override."""
    fields: dict[str, Any] = {
        "title": title,
        "description": description,
        "genre": genre,
        "targetAudience": audience or None,
        "visualElements": visual or None,
        "callToAction": cta,
        "duration": duration,
        "priority": priority,
    }
    return {k: v for k, v in fields.items() if v is not None}


def generated_ads(count: int, seed: int, overrides: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """``count`` generated ads with ``overrides`` (from a file and/or flags) applied to each: a field overridden
    under either of its names replaces the generated one (:func:`~gamead_cli.ad_fields.with_overrides`)."""
    for ad in generate_ads(count, seed):
        yield with_overrides(ad, overrides)
