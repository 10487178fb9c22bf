"""Reading an ad's text for the analyser, and quoting it back: tokens, words, sentences, stems and the vocabulary
lookup (a term as a whole word, case-insensitive, plural allowed), each exact to the regex it stands for.

Each text is read once for every rule: one-word terms in ASCII text are placed by token instead of by regex,
ASCII words, tokens and sentences come from byte tables and ``split()``, and each word is stemmed once per
worker process. Every regex here is linear (no nested quantifiers; look-arounds of fixed width) and the model
bounds every text (title 200, description 2,000, 50 tags of 100 characters), so no input makes it slow; every
cache is bounded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Final, NamedTuple

from gamead_core.worker.analyzer_tables import STOPWORDS

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
#: A sentence (the text between runs of . ! ?) that has a word: from its first word character to its end.
_SENTENCE_WORDS = re.compile(r"[^\W_][^.!?]*")
#: ASCII bytes of ``_WORD`` (letters, digits, ' and -) kept, every other byte a space; and a joiner (' or -) that
#: does not sit between two letters/digits, which ``_WORD`` does not take into a word (one byte: linear).
_WORD_OR_JOINER: Final[bytes] = bytes(b if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "'-") else 32
                                      for b in range(256))
_STRAY_JOINER = re.compile(rb"['-](?:(?![a-zA-Z0-9])|(?<![a-zA-Z0-9]['-]))")  # the joiner first: a fast scan
#: For ASCII text: a letter or digit (``[^\W_]``) becomes "a", each of . ! ? a space, every other byte goes; then
#: each sentence of ``_SENTENCE_WORDS`` is one run of "a"s (counted without building the list of sentences).
_SENTENCE_BYTES: Final[bytes] = bytes(97 if chr(b).isascii() and chr(b).isalnum() else 32 for b in range(256))
_NOT_SENTENCE: Final[bytes] = bytes(b for b in range(256) if not (chr(b).isascii() and chr(b).isalnum()) and
                                    chr(b) not in ".!?")


# --- text helpers -------------------------------------------------------------------------------------


def _q(text: str, limit: int = 80) -> str:
    """Quote the ad's own text, shortened with an ellipsis when long."""
    return f'"{text if len(text) <= limit else text[: limit - 1].rstrip() + "…"}"'


def _quote_all(items: Sequence[str], limit: int = 4) -> str:
    """The first ``limit`` items quoted (each cut at 40 characters), and how many more there are."""
    head = items[:limit]
    if head and max(map(len, head)) <= 40:  # none to shorten: one join
        quoted = '"' + '", "'.join(head) + '"'
    else:
        quoted = ", ".join(_q(i, 40) for i in head)
    return quoted if len(items) <= limit else f"{quoted} and {len(items) - limit} more"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- vocabulary lookup --------------------------------------------------------------------------------
#
# A term matches as a whole word, case-insensitively, plural allowed: the regex ``\bterm(?:e?s)?\b`` with
# re.IGNORECASE, searched in the ad's own text. Running every term's regex over every text was most of the
# analyser's cost, and most terms are absent from any one ad, so each text is first tokenised once (its
# ``_Text``), and a term's regex runs only when a cheap test says it may match:
#
# * a one-word term (``[a-z0-9]+``) can only match a whole ``\w+`` token of the folded text that spells the
#   term, the term + "s" or the term + "es"; so the vocabulary maps those spellings to their term, and the
#   candidates are the text's token set intersected with that map's keys (one C-level set operation);
# * a term of several words (a space or a hyphen inside) is a candidate when it is a substring of the folded
#   text.
#
# Folding is exact for this: Python's case-insensitive ``re`` matches exactly four non-ASCII characters to an
# ASCII letter (found by trying every code point against every letter: İ ı ſ and the Kelvin sign K), which the
# fold maps to that letter before lower-casing; after that every character lower-cases to exactly one
# character of the same word/non-word class (checked over every code point too), so the folded text has the
# same length, the same token boundaries, and a term's letters where the regex would find them. The tests
# (tests/unit/test_analyzer_equivalence.py) pin the outputs to those of the regex-per-term analyser, read from git.
#
# On ASCII text no candidate needs its regex unless a phrase is among them: a one-word term's first match is
# then the first ``\w+`` token that spells it, and ``_Text.first`` maps each token to the index of its first
# occurrence, so the reading order is that of the indexes (whole tokens never overlap, and one token is one
# hit, however many terms it spells). Non-ASCII text, and text with a phrase candidate, run the regexes.

_ASCII_TWINS: Final[dict[int, str]] = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}  # İ ı ſ K (Kelvin)
_TOKEN = re.compile(r"\w+")
_ONE_WORD = re.compile(r"[a-z0-9]+")
#: Byte table for ASCII text: word characters (``\w`` on ASCII: letters, digits, "_") kept, every other byte a
#: space, so ``split()`` yields the ``\w+`` tokens (several times cheaper than the regex).
_WORD_BYTES: Final[bytes] = bytes(b if chr(b).isascii() and (chr(b).isalnum() or b == 95) else 32 for b in range(256))


class _FirstIndex(Mapping[str, int]):
    """Token → index of its first occurrence in ``order``, looked up when asked (``list.index``, in C): ``_find``
    asks for the few tokens that spell a term, so no dict of every token is built per text."""

    __slots__ = ("order",)

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def __getitem__(self, token: str) -> int:
        try:
            return self.order.index(token)
        except ValueError:
            raise KeyError(token) from None

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self.order))

    def __len__(self) -> int:
        return len(set(self.order))


class _Text(NamedTuple):
    """A text with its fold and the set of its folded ``\\w+`` tokens, computed once for every vocabulary; for
    ASCII text also the tokens in reading order and each one's first index."""

    text: str
    folded: str
    tokens: AbstractSet[str]
    first: Mapping[str, int] | None  # ASCII text only: token → index of its first occurrence among the tokens
    order: list[str] | None  # ASCII text only: the tokens in reading order


def _text(text: str) -> _Text:
    if text.isascii():
        folded = text.lower()
        order = folded.encode().translate(_WORD_BYTES).decode().split()
        return _Text(text, folded, set(order), _FirstIndex(order), order)
    folded = text.translate(_ASCII_TWINS).lower()
    return _Text(text, folded, frozenset(_TOKEN.findall(folded)), None, None)


class _Vocab(NamedTuple):
    patterns: dict[str, re.Pattern[str]]  # term → whole word, case-insensitive, plural allowed
    spellings: dict[str, tuple[str, ...]]  # token (term, term+"s", term+"es") → the one-word terms it spells
    spelled: set[str]  # the keys of ``spellings`` (a set: intersecting it with dict keys walks the smaller)
    phrases: tuple[str, ...]  # terms of several words: candidates when a substring of the folded text


def _vocab(terms: Iterable[str]) -> _Vocab:
    """A vocabulary ready for ``_find``, compiled once at import. Terms are lower-case ASCII (ValueError if not)."""
    patterns: dict[str, re.Pattern[str]] = {}
    spellings: dict[str, tuple[str, ...]] = {}
    phrases: list[str] = []
    for term in terms:
        if not (term.isascii() and term == term.lower() and term.strip() == term and term):
            raise ValueError(f"vocabulary terms are lower-case ASCII: {term!r}")
        patterns[term] = re.compile(rf"\b{re.escape(term)}(?:e?s)?\b", re.IGNORECASE)
        if _ONE_WORD.fullmatch(term):
            for spelling in (term, term + "s", term + "es"):
                spellings[spelling] = (*spellings.get(spelling, ()), term)
        else:
            phrases.append(term)
    return _Vocab(patterns, spellings, set(spellings), tuple(phrases))


def _find(text: _Text, vocab: _Vocab) -> list[str]:
    """Vocabulary terms in ``text`` (case-insensitive, whole words, plural allowed), in reading order.

    Each term's first match; matches that overlap an earlier (or, at the same start, longer) one are dropped,
    and so are repeats. Only candidate terms (see the comment above) run their regex. The patterns are linear
    (no nested quantifiers) and the model bounds every text (2,000 characters at most), so no input is slow."""
    spelled = text.tokens & vocab.spelled
    phrases = [term for term in vocab.phrases if term in text.folded] if vocab.phrases else ()
    if text.first is not None and text.order is not None and not phrases:  # ASCII, whole tokens: no regex (above)
        if len(spelled) < 2:
            return [spelled.pop()] if spelled else []
        firsts: dict[str, str] = {}  # term → its first spelling in the text; filled in reading order
        for spelling in sorted(spelled, key=text.order.index):  # ``text.first``, without a call per token
            for term in vocab.spellings[spelling]:
                firsts.setdefault(term, spelling)
        return list(dict.fromkeys(firsts.values()))
    candidates = {term for spelling in spelled for term in vocab.spellings[spelling]}
    candidates.update(phrases)
    spans = []
    for term in candidates:
        if m := vocab.patterns[term].search(text.text):
            spans.append((m.start(), -m.end(), m.group(0).lower()))
    if not spans:
        return []
    found: list[str] = []
    end = 0
    for start, neg_end, hit in sorted(spans):
        if start >= end and hit not in found:
            found.append(hit)
            end = -neg_end
    return found


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i.lower() for i in items))


def _words(text: str) -> list[str]:
    """``_WORD.findall(text)``; for ASCII text by ``split()`` once every byte that cannot be in a word, and every
    ' or - not between two letters/digits, is a space (several times cheaper than the regex)."""
    if not text.isascii():
        return _WORD.findall(text)
    kept = text.encode().translate(_WORD_OR_JOINER)
    if b"'" in kept or b"-" in kept:
        kept = _STRAY_JOINER.sub(b" ", kept)
    return kept.decode().split()


def _stem(word: str) -> str:
    """The plural rule: "ies" ending a word of 5+ characters becomes "y", then an "s" (not "ss") ending a word of
    4+ loses it."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


class _StemCache(dict[str, str]):
    """Word → its stem, "" for a stop word (no word's stem is empty). Words repeat across ads, so each is stemmed
    once; bounded: emptied when it holds ``_STEMS_MAX`` words (a word is at most 2,000 characters and an
    unchanged stem is the word itself, so ≤ 16 MB in the worst case, well under 1 MB for real copy)."""

    def __missing__(self, word: str) -> str:
        if len(self) >= _STEMS_MAX:
            self.clear()
        stem = _stem(word)
        self[word] = stem = "" if stem in STOPWORDS else stem
        return stem


_STEMS_MAX: Final[int] = 4096
_STEMS = _StemCache()
_stem_word = _STEMS.__getitem__  # a dict lookup in C; Python only for a word not seen yet


def _stem_all(words: Iterable[str]) -> set[str]:
    """The stems of ``words`` (lower-case ``_WORD`` words, no spaces), stop words removed."""
    stems = set(map(_stem_word, words))
    stems.discard("")
    return stems


def _stems(text: str) -> frozenset[str]:
    return frozenset(_stem_all(set(_words(text.lower()))))  # each word stemmed once


#: Texts that repeat across ads (visual elements, genres: at most 100 characters each) are stemmed once per
#: worker process; the cache is bounded (LRU) so no stream of distinct tags grows memory without bound.
_short_stems = functools.lru_cache(maxsize=4096)(_stems)


def _ascii_words(text: _Text) -> list[str]:
    """``_WORD.findall(text.folded)`` of an ASCII ``_Text``: its ``\\w+`` tokens when the text has no "_" and
    no ' or - (the only characters where the two differ), else ``_words``."""
    folded = text.folded
    if text.order is None or "_" in folded or "'" in folded or "-" in folded:
        return _words(folded)
    return text.order


def _joined(a: _Text, sep: str, b: _Text) -> _Text:
    """``_text(a.text + sep + b.text)`` for an ASCII ``sep`` without word characters: when both parts are ASCII,
    from their own readings (their tokens one after the other)."""
    if a.order is None or b.order is None:
        return _text(f"{a.text}{sep}{b.text}")
    order = a.order + b.order
    return _Text(f"{a.text}{sep}{b.text}", f"{a.folded}{sep}{b.folded}", a.tokens | b.tokens, _FirstIndex(order), order)


def _sentence_count(text: str) -> int:
    """``len(_SENTENCE_WORDS.findall(text))``: for ASCII text from a byte table (several times cheaper)."""
    if not text.isascii():
        return len(_SENTENCE_WORDS.findall(text))
    runs = text.encode().translate(_SENTENCE_BYTES, _NOT_SENTENCE)
    return runs.count(b" a") + runs.startswith(b"a")
