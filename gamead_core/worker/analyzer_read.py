"""What the analyser's rules read from an ad, worked out once: the compiled vocabularies, the genre table entry a
genre field names, an audience tag's age band and audience, and the title and description (``_read``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Set as AbstractSet
from typing import Final, NamedTuple

from gamead_core.models import AdSubmission
from gamead_core.worker.analyzer_tables import (
    ACTION_VERBS,
    CURRENCY_SIGNS,
    DESCRIPTION_VERBS,
    GENERIC_VERBS,
    GENERIC_VISUALS,
    GENRES,
    INCENTIVES,
    SECOND_PERSON,
    URGENCY,
    GenreProfile,
)
from gamead_core.worker.analyzer_text import (
    _ascii_words,
    _find,
    _join,
    _q,
    _stem_all,
    _stems,
    _Text,
    _text,
    _Vocab,
    _vocab,
    _words,
)

#: Numbers are ASCII digits only, here and in every rule (``\d`` would follow the interpreter's Unicode tables:
#: review30 F17).
_AGE_RANGE = re.compile(r"\b([0-9]{1,2})\s*(?:-|–|to)\s*([0-9]{1,2})\b")
_AGE_UNDER = re.compile(r"\bunder[\s-]*([0-9]{1,2})\b", re.IGNORECASE)
_AGE_PLUS = re.compile(r"\b([0-9]{1,2})\s*\+")

_ACTION_VERBS = _vocab(ACTION_VERBS)
_INCENTIVES = _vocab(INCENTIVES)
_URGENCY = _vocab(URGENCY)
_DESCRIPTION_VERBS = _vocab(DESCRIPTION_VERBS)
_SECOND_PERSON = _vocab(SECOND_PERSON)


class _GenreVocab(NamedTuple):
    aliases: _Vocab
    audiences: _Vocab
    keywords: _Vocab


#: Each genre table entry's vocabularies, compiled once (keyed by the entry's name).
_GENRE_VOCAB: Final[dict[str, _GenreVocab]] = {
    p.name: _GenreVocab(_vocab(p.aliases), _vocab(p.audiences), _vocab(p.keywords)) for p in GENRES
}


@functools.lru_cache(maxsize=1024)
def _genre_profile(genre: str) -> GenreProfile | None:
    """The table entry whose longest alias appears in ``genre`` (first entry wins a tie). Cached: few distinct
    genre fields (≤ 50 characters each) reach one worker; the LRU bound keeps memory flat when many do."""
    best: tuple[int, GenreProfile] | None = None
    text = _text(genre)
    for profile in GENRES:
        for alias in _find(text, _GENRE_VOCAB[profile.name].aliases):
            if best is None or len(alias) > best[0]:
                best = (len(alias), profile)
    return best[1] if best else None


def _age_band(tag: str) -> tuple[int, int] | None:
    """The age band a tag names, low to high ("35 to 18" is 18-35: kept as written it overlapped nothing, rules-1),
    or None."""
    if m := _AGE_RANGE.search(tag):
        lo, hi = int(m[1]), int(m[2])
        return (lo, hi) if lo <= hi else (hi, lo)
    if m := _AGE_UNDER.search(tag):
        return 0, int(m[1]) - 1
    if m := _AGE_PLUS.search(tag):
        return int(m[1]), 99
    return (0, 99) if "all ages" in tag.lower() else None


_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)*")  # ASCII digits: 0-9 on every Python (review30 F17)
_PERCENT = re.compile(r"\s?[%％]")
#: After a number: an incentive word of INCENTIVES (plural allowed), past any "+", spaces or multiplier sign.
_INCENTIVE_WORD = re.compile(r"[+\s]*(?:[x×]\s*)?(?:" + "|".join(map(re.escape, INCENTIVES)) + r")(?:e?s)?\b")
_TIMES = "x×"


def _currency(text: str, at: int) -> bool:
    """Whether ``text[at]`` is one of ``CURRENCY_SIGNS`` ($ € £ ¥ ₹ …: a fixed list, not the interpreter's
    Unicode tables, so every Python reads the same signs)."""
    return 0 <= at < len(text) and text[at] in CURRENCY_SIGNS


def _incentive_numbers(cta: str, folded: str) -> list[str]:
    """The numbers of a call to action that are part of an incentive, each quoted with the sign that makes it one,
    in reading order: with a percent sign ("50%"), a currency sign before or after it, a space allowed ("$5",
    "4.99 €"), a multiplier sign joined to it ("2x", "x2", "3×"), or followed by an incentive word ("1000 Free Gems",
    "500+ coins"). Any other number ("24/7", "v2.1") is none (rules-1 counted every number: attack30a F3). A number
    is ASCII digits, a currency sign one of ``CURRENCY_SIGNS`` ("٥٠%" has none: review30 F17).
    ``folded`` is ``_text(cta).folded`` (the same length and positions, lower case)."""
    hits = []
    for m in _NUMBER.finditer(folded):
        start, end = m.span()
        if p := _PERCENT.match(folded, end):
            end = p.end()
        elif end < len(folded) and folded[end] in _TIMES and not folded[end + 1: end + 2].isalnum():
            end += 1
        elif start and folded[start - 1] in _TIMES and not folded[start - 2: start - 1].isalnum():
            start -= 1
        elif _currency(cta, end) or (folded[end: end + 1] == " " and _currency(cta, end + 1)):
            end += 1 if _currency(cta, end) else 2
        elif _currency(cta, start - 1) or (folded[start - 1: start] == " " and _currency(cta, start - 2)):
            start -= 1 if _currency(cta, start - 1) else 2
        elif not _INCENTIVE_WORD.match(folded, end):
            continue
        hits.append(cta[start:end])
    return hits


@functools.lru_cache(maxsize=512)
def _context_stems(genre: str) -> frozenset[str]:
    """Stems of the genre field and of its table entry's themes: the part of the visual context that is the
    same for every ad of a genre field (≤ 50 characters; bounded LRU cache)."""
    profile = _genre_profile(genre)
    return _stems(genre) | _stems(" ".join(profile.keywords if profile else ()))


def _ages_text(profile: GenreProfile) -> str:
    return " or ".join(f"{lo}-{hi}" if lo else f"under {hi + 1}" for lo, hi in profile.ages)


_AGES_TEXT: Final[dict[str, str]] = {p.name: _ages_text(p) for p in GENRES}
#: Genre name ("" for none) → its example visual elements, quoted and joined, for suggestions.
_EXAMPLES: Final[dict[str, str]] = {
    name: _join([_q(v) for v in visuals])
    for name, visuals in [("", GENERIC_VISUALS), *((p.name, p.visuals) for p in GENRES)]
}


class _Copy(NamedTuple):
    """The ad's title and description as several rules read them, worked out once per ad."""

    title_words: int  # ``_WORD`` words in the title
    description_words: int
    title: _Text
    description: _Text
    stems: AbstractSet[str]  # ``_stems(f"{title} {description}")``


def _read(ad: AdSubmission) -> _Copy:
    title, description = ad.title, ad.description
    heading, text = _text(title), _text(description)
    if title.isascii() and description.isascii():  # lower() keeps each ASCII word, lower-cased, where it was
        title_words, words = _ascii_words(heading), _ascii_words(text)
        stems = _stem_all({*title_words, *words})
        return _Copy(len(title_words), len(words), heading, text, stems)
    return _Copy(len(_words(title)), len(_words(description)), heading, text, _stems(f"{title} {description}"))


class _Tag(NamedTuple):
    """What the audience-fit rule reads in one audience tag, for one genre table entry."""

    banded: bool  # the tag has an age band (_age_band)
    fitting: bool  # ... that overlaps one of the entry's typical ages
    audience: bool  # the tag names an audience of the entry


_PROFILES: Final[dict[str, GenreProfile]] = {p.name: p for p in GENRES}


@functools.lru_cache(maxsize=4096)
def _read_tag(tag: str, genre: str) -> _Tag:
    """``tag`` read for table entry ``genre``. Tag by tag is the same as the tags joined by " ; " (no term holds
    a ";", and a word boundary at a tag's edge is one either way); tags (≤ 100 characters) repeat across ads, so
    the readings are cached (bounded LRU)."""
    band, ages = _age_band(tag), _PROFILES[genre].ages
    fitting = band is not None and any(lo <= band[1] and band[0] <= hi for lo, hi in ages)
    return _Tag(band is not None, fitting, bool(_find(_text(tag), _GENRE_VOCAB[genre].audiences)))


#: Genre name ("" for none) → its themes, then the generic verbs, that are description verbs (repeats kept).
_VERB_IDEAS: Final[dict[str, tuple[str, ...]]] = {
    name: tuple(k for k in themes + GENERIC_VERBS if k in DESCRIPTION_VERBS)
    for name, themes in [("", ()), *((p.name, p.keywords) for p in GENRES)]
}
