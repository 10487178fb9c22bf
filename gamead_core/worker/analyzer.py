"""Rule-based ad analyser: pure, deterministic and explainable.

``analyze(ad)`` scores six named components (0–10 each), combines them with fixed weights into the
effectiveness score and explains every number with a sentence that quotes the ad's own content. No
randomness, clock or I/O: the same ad always gets the same ``Analysis``, list order included.

Cost: about 0.3x the CPU of the regex-per-term version it replaced, with exactly its outputs (see "vocabulary
lookup" below; ``benchmarks/bench_analyzer.py`` measures both in one run): each ad's title and description are
read once for every rule (``_read``), one-word terms in ASCII text are placed by token instead of by regex,
stems come from two regex passes over all words at once, and the strength and suggestion texts are built only
when ``analyze`` uses them. Every regex here is linear (no nested quantifiers; look-arounds of fixed width) and
the model bounds every text (title 200, description 2,000, 50 tags of 100 characters), so no input makes it
slow; the only caches are LRU-bounded.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final, NamedTuple

from gamead_core.errors import PermanentError
from gamead_core.models import AdSubmission, Analysis

ANALYZER_VERSION: Final[str] = "rules-1"

#: Component name → weight. The order here is the order of ``Analysis.components``; weights sum to 1.0.
WEIGHTS: Final[dict[str, float]] = {
    "call_to_action": 0.25,
    "title_clarity": 0.15,
    "description_clarity": 0.15,
    "audience_genre_fit": 0.20,
    "visual_richness": 0.15,
    "duration_fit": 0.10,
}
STRONG: Final[float] = 7.0  # components at or above this are strengths, below it get suggestions
MAX_NOTES: Final[int] = 5

ACTION_VERBS: Final[tuple[str, ...]] = (
    "pre-register", "preregister", "download", "install", "play", "join", "claim", "build", "start",
    "get", "try", "grab", "unlock", "sign up", "register", "subscribe", "discover", "explore", "battle",
    "conquer", "collect", "win", "enter", "shop", "buy",
)
INCENTIVES: Final[tuple[str, ...]] = (
    "free", "bonus", "gem", "coin", "reward", "gift", "prize", "exclusive", "discount", "loot", "double",
)
URGENCY: Final[tuple[str, ...]] = (
    "now", "today", "tonight", "limited", "limited time", "hurry", "last chance", "ends soon", "this week",
)
DESCRIPTION_VERBS: Final[tuple[str, ...]] = ACTION_VERBS + (
    "train", "fight", "defend", "race", "drive", "drift", "solve", "match", "master", "lead", "create",
    "design", "craft", "upgrade", "rule", "command", "raid", "compete", "shoot", "farm", "grow", "manage",
    "rise", "dominate", "survive", "escape", "save", "protect", "customize", "merge", "relax", "learn",
)
SECOND_PERSON: Final[tuple[str, ...]] = ("you", "your", "yours", "yourself")
STOPWORDS: Final[frozenset[str]] = frozenset(
    "a an the and or of to in on for with your you new game it is at by from all our my".split()
)
FORMATS: Final[tuple[int, ...]] = (6, 15, 30, 60)  # bumper, short, standard, long (seconds)
_FORMATS_TEXT: Final[str] = ", ".join(str(f) for f in FORMATS) + " s"
GENERIC_VISUALS: Final[tuple[str, ...]] = ("gameplay footage", "main character", "reward screen")
GENERIC_VERBS: Final[tuple[str, ...]] = ("play", "explore", "win")
HOOKS: Final[tuple[tuple[str, str], ...]] = (
    ("colon subtitle", r":"), ("dash subtitle", r"\s[-–—]\s"), ("number", r"\d"),
)


@dataclass(frozen=True)
class GenreProfile:
    name: str
    aliases: tuple[str, ...]  # how the genre field may spell it
    audiences: tuple[str, ...]  # words a fitting audience tag uses
    typical: str  # an example audience tag, for suggestions
    ages: tuple[tuple[int, int], ...]  # typical age bands
    keywords: tuple[str, ...]  # themes the title/description should mention
    visuals: tuple[str, ...]  # example visual elements, for suggestions


GENRES: Final[tuple[GenreProfile, ...]] = (
    GenreProfile("Strategy", ("strategy", "4x", "rts", "tower defense", "war game"),
                 ("strategy", "tactics", "midcore", "hardcore"), "Strategy Gamers", ((18, 34), (25, 44)),
                 ("kingdom", "empire", "army", "armies", "castle", "conquer", "territory", "territories", "war",
                  "battle", "build", "alliance", "power", "rule"),
                 ("armies clashing", "castle siege", "world map")),
    GenreProfile("Puzzle/Casual", ("puzzle", "casual", "match-3", "match 3", "hypercasual", "word", "idle", "merge"),
                 ("casual", "puzzle", "commuters", "parents", "moms", "adults"), "Casual Gamers", ((25, 54),),
                 ("puzzle", "match", "level", "relax", "brain", "tile", "solve", "combo", "merge", "word", "blast"),
                 ("level completion", "combo effects", "tile clear")),
    GenreProfile("Shooter", ("shooter", "fps", "tps", "battle royale", "action"),
                 ("competitive", "fps", "shooter", "hardcore", "esports"), "Competitive Gamers", ((18, 34),),
                 ("shoot", "squad", "battle", "weapon", "gun", "sniper", "royale", "fire", "win", "arena", "fight"),
                 ("first-person gunfight", "squad victory", "weapon loadout")),
    GenreProfile("RPG", ("rpg", "role-playing", "role playing", "mmorpg", "jrpg", "action rpg", "adventure"),
                 ("rpg", "fantasy", "role-playing", "midcore", "hardcore", "anime"), "RPG Fans", ((18, 34), (25, 44)),
                 ("hero", "quest", "loot", "dragon", "magic", "adventure", "epic", "legend", "guild", "dungeon",
                  "sword", "train"),
                 ("hero close-up", "boss fight", "loot drop")),
    GenreProfile("Sports", ("sports", "sport", "football", "soccer", "basketball", "baseball", "golf", "tennis"),
                 ("sports", "fans", "football", "soccer", "basketball"), "Sports Fans", ((18, 44),),
                 ("team", "match", "league", "goal", "score", "championship", "season", "stadium", "win"),
                 ("stadium crowd", "winning goal", "star players")),
    GenreProfile("Racing", ("racing", "racer", "driving", "car", "kart"),
                 ("car", "racing", "speed", "motorsport", "drivers"), "Racing Fans", ((18, 44),),
                 ("race", "speed", "car", "drift", "track", "nitro", "win", "drive", "turbo", "finish"),
                 ("drift around a corner", "nitro boost", "finish line")),
    GenreProfile("Simulation", ("simulation", "sim", "tycoon", "farming", "life sim", "management", "sandbox"),
                 ("casual", "simulation", "builders", "creative", "management"), "Sim Fans", ((25, 54),),
                 ("build", "farm", "city", "manage", "design", "create", "life", "grow", "business", "tycoon"),
                 ("city growing", "farm harvest", "before-and-after makeover")),
    GenreProfile("Kids/Family", ("kids", "kid", "family", "children", "educational", "preschool"),
                 ("kids", "children", "parents", "families", "family", "preschool"), "Parents of Kids 6-12",
                 ((0, 12),), ("fun", "learn", "friends", "family", "kids", "cute", "animal", "color", "play"),
                 ("friendly characters", "bright colours", "kids playing together")),
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_AGE_RANGE = re.compile(r"\b(\d{1,2})\s*(?:-|–|to)\s*(\d{1,2})\b")
_AGE_UNDER = re.compile(r"\bunder[\s-]*(\d{1,2})\b", re.IGNORECASE)
_AGE_PLUS = re.compile(r"\b(\d{1,2})\s*\+")
#: A sentence (the text between runs of . ! ?) that has a word: from its first word character to its end.
_SENTENCE_WORDS = re.compile(r"[^\W_][^.!?]*")
#: ASCII bytes of ``_WORD`` (letters, digits, ' and -) kept, every other byte a space; and a joiner (' or -) that
#: does not sit between two letters/digits, which ``_WORD`` does not take into a word (one byte: linear).
_WORD_OR_JOINER: Final[bytes] = bytes(b if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "'-") else 32
                                      for b in range(256))
_STRAY_JOINER = re.compile(rb"['-](?![a-zA-Z0-9])|(?<![a-zA-Z0-9])['-]")
_HOOK_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple((n, re.compile(p)) for n, p in HOOKS)


class _Verdict(NamedTuple):
    score: float
    reason: str
    strength: str
    suggestion: Callable[[], str | None]  # built on demand; None when there is nothing concrete to improve


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


class _Text(NamedTuple):
    """A text with its fold and the set of its folded ``\\w+`` tokens, computed once for every vocabulary; for
    ASCII text also the tokens in reading order and each one's first index (``tokens`` is then its keys)."""

    text: str
    folded: str
    tokens: AbstractSet[str]
    first: dict[str, int] | None  # ASCII text only: token → index of its first occurrence among the tokens
    order: list[str] | None  # ASCII text only: the tokens in reading order


def _text(text: str) -> _Text:
    if text.isascii():
        folded = text.lower()
        order = folded.encode().translate(_WORD_BYTES).decode().split()
        first = dict(zip(reversed(order), range(len(order) - 1, -1, -1)))  # later (smaller) indexes overwrite
        return _Text(text, folded, first.keys(), first, order)
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
    if text.first is not None and not phrases:  # ASCII, whole tokens only: no regex (see the comment above)
        if len(spelled) < 2:
            return [spelled.pop()] if spelled else []
        firsts: dict[str, tuple[int, str]] = {}
        for spelling in spelled:
            at = (text.first[spelling], spelling)
            for term in vocab.spellings[spelling]:
                if term not in firsts or at < firsts[term]:
                    firsts[term] = at
        return [spelling for _, spelling in sorted(set(firsts.values()))]
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


#: The plural rule on words joined by spaces (no word holds one), all at once: "ies" ending a word of 5+ characters
#: becomes "y", then an "s" (not "ss") ending a word of 4+ loses it. The literal comes first, so the regex
#: engine scans for it at C speed; one pass each, no backtracking (fixed-width look-arounds).
_PLURAL_IES = re.compile(r"ies(?= |\Z)(?<=[^ ][^ ]ies)")
_PLURAL_S = re.compile(r"s(?= |\Z)(?<=[^ ][^ ][^ s]s)")


def _stem_all(words: Iterable[str]) -> set[str]:
    """The stems of ``words`` (lower-case ``_WORD`` words, no spaces), stop words removed."""
    joined = " ".join(words)
    if "ies" in joined:
        joined = _PLURAL_IES.sub("y", joined)
    return set(_PLURAL_S.sub("", joined).split()).difference(STOPWORDS)


def _stems(text: str) -> frozenset[str]:
    return frozenset(_stem_all(set(_words(text.lower()))))  # each word stemmed once


#: Texts that repeat across ads (visual elements, genres: at most 100 characters each) are stemmed once per
#: worker process; the cache is bounded (LRU) so no stream of distinct tags grows memory without bound.
_short_stems = functools.lru_cache(maxsize=4096)(_stems)


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
    if m := _AGE_RANGE.search(tag):
        return int(m[1]), int(m[2])
    if m := _AGE_UNDER.search(tag):
        return 0, int(m[1]) - 1
    if m := _AGE_PLUS.search(tag):
        return int(m[1]), 99
    return (0, 99) if "all ages" in tag.lower() else None


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


@functools.lru_cache(maxsize=1024)
def _rounded(score: float) -> float:
    """A component's raw score as reported: clamped to 0-10, one decimal. Cached (``round`` to a decimal is a
    slow call): raw scores are sums of a few constants, or the duration's (one per length in seconds)."""
    return float(round(min(10.0, max(0.0, score)), 1))


def _strong(score: float) -> bool:
    """Whether a component scoring ``score`` (raw) is a strength: only then does analyze() read its strength."""
    return _rounded(score) >= STRONG


def _suggest(prefix: str, issues: list[str]) -> str | None:
    return f"{prefix}: {'; '.join(issues)}." if issues else None


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


def _ascii_words(text: _Text) -> list[str]:
    """``_WORD.findall(text.folded)`` of an ASCII ``_Text``: its ``\\w+`` tokens when the text has no "_" and
    no ' or - (the only characters where the two differ), else ``_words``."""
    folded = text.folded
    if text.order is None or "_" in folded or "'" in folded or "-" in folded:
        return _words(folded)
    return text.order


#: Below every token index of any text (at most a few thousand tokens).
_FAR: Final[int] = 1 << 40


def _joined(a: _Text, sep: str, b: _Text) -> _Text:
    """``_text(a.text + sep + b.text)`` for an ASCII ``sep`` without word characters: when both parts are ASCII,
    from their own readings (``a``'s first indexes moved below all of ``b``'s: only their order matters)."""
    if a.first is None or b.first is None:
        return _text(f"{a.text}{sep}{b.text}")
    first = {**b.first, **{token: i - _FAR for token, i in a.first.items()}}
    order = None if a.order is None or b.order is None else a.order + b.order
    return _Text(f"{a.text}{sep}{b.text}", f"{a.folded}{sep}{b.folded}", first.keys(), first, order)


# --- components ---------------------------------------------------------------------------------------


def _call_to_action(ad: AdSubmission) -> _Verdict:
    return _cta_verdict(ad.call_to_action)


#: A call to action (≤ 200 characters) is all its verdict depends on, and few distinct ones reach a worker (8 in
#: ``gamead submit``'s generator, 22 in the benchmark corpus): each is judged once while among the 1,024 most
#: recent (LRU; well under 1 MB).
@functools.lru_cache(maxsize=1024)
def _cta_verdict(cta: str) -> _Verdict:
    text = _text(cta)
    verbs, urgency = _find(text, _ACTION_VERBS), _find(text, _URGENCY)
    incentives = _unique(_NUMBER.findall(cta) + _find(text, _INCENTIVES))
    score = (4 if verbs else 0) + (3 if len(incentives) >= 2 else 2 if incentives else 0)
    score += (2 if urgency else 0) + (1 if 8 <= len(cta) <= 50 else 0)
    parts = [("an action verb", verbs[:1]), ("an incentive", incentives), ("urgency", urgency)]
    has = [f"{label} ({_quote_all(hits)})" for label, hits in parts if hits]
    missing = [label for label, hits in parts if not hits]
    clauses = has + [f"no {label.removeprefix('an ')}" for label in missing]
    reason = f"Call to action {_q(cta, 200)} has {_join(clauses)}."
    strength = f"Call to action {_q(cta, 200)} combines {_join(has)}." if has else ""

    def suggestion() -> str | None:  # built only when analyze() uses it
        issues = []
        if missing:
            verb = verbs[0].title() if verbs else "Play"
            when = (urgency or ["today"])[0].title()
            example = f"{cta.rstrip('!. ')} Today" if verbs and incentives else f"{verb} Free {when}"
            issues.append(f"add {_join(missing)} — e.g. {_q(example)}")
        if len(cta) > 50:
            issues.append(f"shorten it to 50 characters or fewer (now {len(cta)})")
        return _suggest(f"Improve call to action {_q(cta, 200)}", issues)

    return _Verdict(score, reason, strength, suggestion)


def _title_clarity(ad: AdSubmission, copy: _Copy) -> _Verdict:
    title = ad.title
    chars, words = len(title), copy.title_words
    if title.isascii():  # an ASCII letter is upper or lower case, and upper() changes only the lower ones
        shouting = title == title.upper() and sum(map(str.isalpha, title)) >= 4
    else:
        letters = [c for c in title if c.isalpha()]
        shouting = len(letters) >= 4 and all(c.isupper() for c in letters)
    hooks = [name for name, pattern in _HOOK_PATTERNS if pattern.search(title)]
    score = (4 if 15 <= chars <= 60 else 2 if 8 <= chars <= 90 else 0) + (0 if shouting else 1) + (3 if hooks else 0)
    score += 2 if 2 <= words <= 8 else 1 if 2 <= words <= 12 else 0
    hook_text = f"a hook ({', '.join(hooks)})" if hooks else "no hook"
    size = f"{_n(chars, 'character')} and {_n(words, 'word')}"
    quoted = _q(title)
    reason = f"Title {quoted} has {size}, {'is ALL CAPS' if shouting else 'is not all caps'} and has {hook_text}."
    strength = f"Title {quoted} is clear: {size}" + (f", with {hook_text}." if hooks else ".") if _strong(score) else ""

    def suggestion() -> str | None:  # built only when analyze() uses it
        issues = []
        if not 15 <= chars <= 60:
            issues.append(f"{'lengthen' if chars < 15 else 'shorten'} it to 15-60 characters (now {chars})")
        if not 2 <= words <= 8:
            issues.append(f"use 2-8 words (now {words})")
        if shouting:
            issues.append("use title case instead of ALL CAPS")
        if not hooks:
            base = title.title() if shouting else title
            issues.append(f"add a hook such as a colon subtitle or a number — e.g. {_q(base + ': Chapter 1')}")
        return _suggest(f"Rework title {quoted}", issues)

    return _Verdict(score, reason, strength, suggestion)


def _description_clarity(ad: AdSubmission, profile: GenreProfile | None, copy: _Copy) -> _Verdict:
    text = ad.description
    chars, words = len(text), copy.description_words
    sentences = max(1, len(_SENTENCE_WORDS.findall(text)))
    avg = words / sentences
    tokens = copy.description
    verbs, you = _find(tokens, _DESCRIPTION_VERBS), _find(tokens, _SECOND_PERSON)
    score = (3 if 40 <= chars <= 200 else 1.5 if 20 <= chars <= 400 else 0) + (2 if you else 0)
    score += (2 if 5 <= avg <= 20 else 1 if 3 <= avg <= 30 else 0) + (3 if len(verbs) >= 2 else 2 if verbs else 0)
    quoted = _q(text, 60)
    verb_text = f"active verbs ({_quote_all(verbs)})" if verbs else "no active verbs"
    you_quoted = _q(you[0]) if you else ""
    you_text = f"addresses the player ({you_quoted})" if you else 'never addresses the player as "you"'
    shape = f"{_n(chars, 'character')} in {_n(sentences, 'sentence')} of ~{avg:.0f} words"
    reason = f"Description {quoted} has {shape}, {verb_text}, and {you_text}."
    strength = ""
    if _strong(score):
        virtues = ([f"speaks to the player ({you_quoted})"] if you else []) + [f"uses {verb_text}"]
        strength = f"Description {quoted} {_join(virtues)}."
    ideas = _VERB_IDEAS[profile.name if profile else ""]

    def suggestion() -> str | None:  # built only when analyze() uses it
        suggested = [k for k in ideas if k not in verbs][:3]
        issues = []
        if not 40 <= chars <= 200:
            issues.append(f"{'expand' if chars < 40 else 'tighten'} it to 40-200 characters (now {chars})")
        if not 5 <= avg <= 20:
            issues.append(f"use sentences of 5-20 words (now ~{avg:.0f})")
        if len(verbs) < 2:
            issues.append(f"use active verbs such as {_join([_q(v) for v in suggested])}")
        if not you:
            issues.append('speak to the player with "you"/"your"')
        return _suggest(f"Rewrite description {quoted}", issues)

    return _Verdict(score, reason, strength, suggestion)


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


def _audience_genre_fit(ad: AdSubmission, profile: GenreProfile | None, copy: _Copy) -> _Verdict:
    tags, genre = ad.target_audience, _q(ad.genre)
    if profile is None:
        reason = f"Genre {genre} is not in the genre table, so audience fit gets a neutral score" + (
            "." if tags else ", lowered because no target audience is declared.")
        names = ", ".join(p.name for p in GENRES)
        suggestion = f"Name a specific genre instead of {genre} (one of {names}) so the ad can find its audience."
        return _Verdict(5.0 if tags else 3.0, reason, "", lambda: suggestion)
    ages = _AGES_TEXT[profile.name]
    readings = [_read_tag(tag, profile.name) for tag in tags]
    banded, fitting, audience_hits = map(any, zip(*readings)) if readings else (False, False, False)
    themes = _find(_joined(copy.title, " . ", copy.description), _GENRE_VOCAB[profile.name].keywords)
    age_points = 4 if fitting else 0 if banded or not tags else 2  # a mismatched band costs the most
    score = 1 + age_points + (2 if audience_hits else 0) + (3 if len(themes) >= 2 else 1.5 if themes else 0)
    audience = f"audience {_quote_all(tags)}" if tags else "no declared audience"
    theme_text = f"the copy mentions {_quote_all(themes) if themes else f'no {profile.name} themes'}"
    reason = f"Genre {genre} (read as {profile.name}, typically {ages}) targets {audience}, and {theme_text}."
    strength = ""
    if _strong(score):
        strength = f"Genre {genre} and {audience} are a natural fit" + (f", and {theme_text}." if themes else ".")

    def suggestion() -> str | None:  # built only when analyze() uses it
        issues = []
        if not tags:
            issues.append(f'declare a target audience such as "{profile.typical}" aged {ages}')
        elif banded and not fitting:
            with_band = list(dict.fromkeys(tag for tag, read in zip(tags, readings) if read.banded))
            issues.append(f"{_quote_all(with_band)} is unusual for {profile.name} (typically {ages})")
        elif not banded:
            issues.append(f"add an age band such as {ages}")
        if tags and not audience_hits:
            issues.append(f'name the audience the genre draws, e.g. "{profile.typical}"')
        if len(themes) < 2:
            ideas = _join([_q(k) for k in [k for k in profile.keywords if k not in themes][:3]])
            issues.append(f"mention {profile.name} themes such as {ideas} in the title or description")
        return _suggest(f"Sharpen the fit of {genre}", issues)

    return _Verdict(score, reason, strength, suggestion)


def _visual_count_points(distinct: int) -> int:
    """3-6 distinct visuals is best; fewer is thin, many more is cluttered."""
    if 3 <= distinct <= 6:
        return 4
    if distinct == 2 or 7 <= distinct <= 10:
        return 3
    return 2 if distinct == 1 else 1 if distinct > 10 else 0


def _visual_richness(ad: AdSubmission, profile: GenreProfile | None, copy: _Copy) -> _Verdict:
    elements = ad.visual_elements
    n, distinct = len(elements), len({e.casefold() for e in elements})
    # _WORD never matches across a space, so the stems of "title description genre themes" are the union of
    # each part's stems; the genre's and its themes' are cached.
    context = copy.stems | _context_stems(ad.genre)
    related = [e for e in elements if _short_stems(e) & context]
    score = _visual_count_points(distinct)
    score += 0 if n == 0 else 2 if n > 1 and distinct == n else 1 if n == 1 or distinct * 2 >= n else 0
    score += 4 if related and len(related) * 2 >= n else 2 if related else 0
    listed = _quote_all(elements) if elements else "none"
    reason = f"{_n(n, 'visual element')} ({listed}), {distinct} distinct, {len(related)} tied to the game's content."
    strength = ""
    if _strong(score):
        ties = "all tied to the game's content" if len(related) == n else f"{_quote_all(related)} tie back to the game"
        strength = f"Visuals {listed} are a focused set of {n}" + (f", {ties}." if related else ".")
    examples = _EXAMPLES[profile.name if profile else ""]

    def suggestion() -> str | None:  # built only when analyze() uses it
        issues = []
        if n == 0:
            issues.append(f"list 3-6 visual elements, e.g. {examples}")
        elif n < 3:
            issues.append(f"add {_n(3 - n, 'more visual element')} (3-6 is best), e.g. {examples}")
        elif n > 6:
            issues.append(f"trim the {n} visual elements to the 3-6 strongest")
        if distinct < n:
            issues.append("remove duplicate visual elements")
        if n and len(related) * 2 < n:
            issues.append(f"tie visuals such as {_q(elements[0], 40)} to the game's own content, e.g. {examples}")
        return _suggest(f"Strengthen the visuals for {_q(ad.title)}", issues)

    return _Verdict(score, reason, strength, suggestion)


def _duration_fit(ad: AdSubmission) -> _Verdict:
    return _duration_verdict(ad.duration)


@functools.lru_cache(maxsize=1024)  # the model allows 1-600 s: every valid duration stays cached
def _duration_verdict(seconds: int) -> _Verdict:
    nearest = min(FORMATS, key=lambda f: (abs(seconds - f), f))
    formats = _FORMATS_TEXT
    ceiling = FORMATS[-1]
    if seconds > ceiling:  # many placements reject anything longer: a steep extra penalty
        score = max(0.0, 4.0 - (seconds - ceiling) / 10)
        reason = f"Duration {seconds} s runs {seconds - ceiling} s past the {ceiling} s ceiling of standard formats."
        suggestion = f"Cut the {seconds} s ad to {ceiling} s or less, ideally 30 s (standard formats: {formats})."
        return _Verdict(score, reason, "", lambda: suggestion)
    gap = abs(seconds - nearest)
    below = [f for f in FORMATS if f < nearest]
    other = (below[-1] if below else 0) if seconds < nearest else next((f for f in FORMATS if f > nearest), nearest)
    half = max(abs(nearest - other) / 2, 1.0)
    score = max(0.0, 10 - 6 * gap / half)
    where = "exactly matches" if gap == 0 else f"is {gap} s from"
    reason = f"Duration {seconds} s {where} the nearest standard format ({nearest} s; formats: {formats})."
    strength = f"Duration {seconds} s {where} the standard {nearest} s format."
    verb, other_verb = ("Extend", "trim") if seconds < nearest else ("Trim", "extend")
    alternative = f", or {other_verb} it to {other} s" if 0 < other != nearest else ""
    suggestion = f"{verb} the {seconds} s ad to the standard {nearest} s format{alternative} (formats: {formats})."
    return _Verdict(score, reason, strength, lambda: None if gap == 0 else suggestion)


# --- the analysis -------------------------------------------------------------------------------------


_SCORE = operator.itemgetter(0)


def analyze(ad: AdSubmission) -> Analysis:
    """Score ``ad``; deterministic, and every number is explained in terms of the ad's own content."""
    profile, copy = _genre_profile(ad.genre), _read(ad)
    verdicts = (  # in the order of WEIGHTS
        _call_to_action(ad),
        _title_clarity(ad, copy),
        _description_clarity(ad, profile, copy),
        _audience_genre_fit(ad, profile, copy),
        _visual_richness(ad, profile, copy),
        _duration_fit(ad),
    )
    scores = [_rounded(v.score) for v in verdicts]
    # Plain dicts, validated once with the Analysis (cheaper than a ComponentScore each; the same values).
    components = [{"name": name, "score": score, "weight": weight, "reason": v.reason}
                  for (name, weight), score, v in zip(WEIGHTS.items(), scores, verdicts)]
    total = round(min(10.0, max(0.0, sum(map(operator.mul, scores, WEIGHTS.values())))), 1)
    ranked = sorted(zip(scores, verdicts), key=_SCORE)  # stable: ties keep the order of WEIGHTS
    best_first = sorted(ranked, key=_SCORE, reverse=True)  # reverse=True keeps ties in order too
    strengths = [v.strength for score, v in best_first if score >= STRONG and v.strength]
    suggestions = [s for score, v in ranked if score < STRONG and (s := v.suggestion())]
    if not suggestions:  # everything is strong: still offer the most useful polish
        suggestions = [s for score, v in ranked if score < 10 and (s := v.suggestion())][:1] or [
            f"Every component scores {STRONG:g} or more; A/B test a second call to action against "
            f"{_q(ad.call_to_action, 200)} to confirm it is the strongest."
        ]
    return Analysis(
        effectiveness_score=total,
        components=components,
        strengths=strengths[:MAX_NOTES],
        improvement_suggestions=suggestions[:MAX_NOTES],
        analyzer_version=ANALYZER_VERSION,
    )


def check_analysable(ad: AdSubmission) -> None:
    """Refuse content the analyser can never work with: no letters at all in the title and description.
    Raises :class:`PermanentError` (the ad is dead-lettered at once)."""
    if not any(ch.isalpha() for ch in f"{ad.title} {ad.description}"):
        raise PermanentError("the title and description contain no words to analyse")
