"""The analyser as it was before it was made cheaper (``rules-1``, commit e6f552f), kept verbatim as a test oracle:
``test_analyzer_equivalence.py`` checks that ``gamead_core.worker.analyzer.analyze`` gives exactly its outputs.
Not imported by the service.

Original docstring: rule-based ad analyser: pure, deterministic and explainable.

``analyze(ad)`` scores six named components (0–10 each), combines them with fixed weights into the
effectiveness score and explains every number with a sentence that quotes the ad's own content. No
randomness, clock or I/O: the same ad always gets the same ``Analysis``, list order included.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from gamead_core.errors import PermanentError
from gamead_core.models import AdSubmission, Analysis, ComponentScore

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


class _Verdict(NamedTuple):
    score: float
    reason: str
    strength: str
    suggestion: str | None  # None when there is nothing concrete to improve


# --- text helpers -------------------------------------------------------------------------------------


def _q(text: str, limit: int = 80) -> str:
    """Quote the ad's own text, shortened with an ellipsis when long."""
    return f'"{text if len(text) <= limit else text[: limit - 1].rstrip() + "…"}"'


def _quote_all(items: Sequence[str], limit: int = 4) -> str:
    quoted = ", ".join(_q(i, 40) for i in items[:limit])
    return quoted + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    """Compiled once per term (compiling per call was ~20% of a worker's CPU)."""
    return re.compile(rf"\b{re.escape(term)}(?:e?s)?\b", re.IGNORECASE)


def _find(text: str, vocab: Iterable[str]) -> list[str]:
    """Vocabulary terms in ``text`` (case-insensitive, whole words, plural allowed), in reading order."""
    spans = []
    for term in vocab:
        if m := _term_pattern(term).search(text):
            spans.append((m.start(), -m.end(), m.group(0).lower()))
    found: list[str] = []
    end = 0
    for start, neg_end, hit in sorted(spans):
        if start >= end and hit not in found:
            found.append(hit)
            end = -neg_end
    return found


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i.lower() for i in items))


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower())} - STOPWORDS


def _genre_profile(genre: str) -> GenreProfile | None:
    """The table entry whose longest alias appears in ``genre`` (first entry wins a tie)."""
    best: tuple[int, GenreProfile] | None = None
    for profile in GENRES:
        for alias in _find(genre, profile.aliases):
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


def _ages_text(profile: GenreProfile) -> str:
    return " or ".join(f"{lo}-{hi}" if lo else f"under {hi + 1}" for lo, hi in profile.ages)


def _suggest(prefix: str, issues: list[str]) -> str | None:
    return f"{prefix}: {'; '.join(issues)}." if issues else None


# --- components ---------------------------------------------------------------------------------------


def _call_to_action(ad: AdSubmission) -> _Verdict:
    cta = ad.call_to_action
    verbs, urgency = _find(cta, ACTION_VERBS), _find(cta, URGENCY)
    incentives = _unique(_NUMBER.findall(cta) + _find(cta, INCENTIVES))
    score = (4 if verbs else 0) + (3 if len(incentives) >= 2 else 2 if incentives else 0)
    score += (2 if urgency else 0) + (1 if 8 <= len(cta) <= 50 else 0)
    parts = [("an action verb", verbs[:1]), ("an incentive", incentives), ("urgency", urgency)]
    has = [f"{label} ({_quote_all(hits)})" for label, hits in parts if hits]
    missing = [label for label, hits in parts if not hits]
    clauses = has + [f"no {label.removeprefix('an ')}" for label in missing]
    reason = f"Call to action {_q(cta, 200)} has {_join(clauses)}."
    strength = f"Call to action {_q(cta, 200)} combines {_join(has)}." if has else ""
    issues = []
    if missing:
        verb = verbs[0].title() if verbs else "Play"
        when = (urgency or ["today"])[0].title()
        example = f"{cta.rstrip('!. ')} Today" if verbs and incentives else f"{verb} Free {when}"
        issues.append(f"add {_join(missing)} — e.g. {_q(example)}")
    if len(cta) > 50:
        issues.append(f"shorten it to 50 characters or fewer (now {len(cta)})")
    suggestion = _suggest(f"Improve call to action {_q(cta, 200)}", issues)
    return _Verdict(score, reason, strength, suggestion)


def _title_clarity(ad: AdSubmission) -> _Verdict:
    title = ad.title
    chars, words = len(title), len(_WORD.findall(title))
    letters = [c for c in title if c.isalpha()]
    shouting = len(letters) >= 4 and all(c.isupper() for c in letters)
    hooks = [name for name, pattern in HOOKS if re.search(pattern, title)]
    score = (4 if 15 <= chars <= 60 else 2 if 8 <= chars <= 90 else 0) + (0 if shouting else 1) + (3 if hooks else 0)
    score += 2 if 2 <= words <= 8 else 1 if 2 <= words <= 12 else 0
    hook_text = f"a hook ({', '.join(hooks)})" if hooks else "no hook"
    size = f"{_n(chars, 'character')} and {_n(words, 'word')}"
    reason = f"Title {_q(title)} has {size}, {'is ALL CAPS' if shouting else 'is not all caps'} and has {hook_text}."
    strength = f"Title {_q(title)} is clear: {size}" + (f", with {hook_text}." if hooks else ".")
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
    return _Verdict(score, reason, strength, _suggest(f"Rework title {_q(title)}", issues))


def _description_clarity(ad: AdSubmission, profile: GenreProfile | None) -> _Verdict:
    text = ad.description
    chars, words = len(text), len(_WORD.findall(text))
    sentences = max(1, sum(1 for part in re.split(r"[.!?]+", text) if _WORD.search(part)))
    avg = words / sentences
    verbs, you = _find(text, DESCRIPTION_VERBS), _find(text, SECOND_PERSON)
    score = (3 if 40 <= chars <= 200 else 1.5 if 20 <= chars <= 400 else 0) + (2 if you else 0)
    score += (2 if 5 <= avg <= 20 else 1 if 3 <= avg <= 30 else 0) + (3 if len(verbs) >= 2 else 2 if verbs else 0)
    quoted = _q(text, 60)
    verb_text = f"active verbs ({_quote_all(verbs)})" if verbs else "no active verbs"
    you_text = f"addresses the player ({_q(you[0])})" if you else 'never addresses the player as "you"'
    shape = f"{_n(chars, 'character')} in {_n(sentences, 'sentence')} of ~{avg:.0f} words"
    reason = f"Description {quoted} has {shape}, {verb_text}, and {you_text}."
    virtues = ([f"speaks to the player ({_q(you[0])})"] if you else []) + [f"uses {verb_text}"]
    strength = f"Description {quoted} {_join(virtues)}."
    themes = profile.keywords if profile else ()
    suggested = [k for k in themes + GENERIC_VERBS if k in DESCRIPTION_VERBS and k not in verbs][:3]
    issues = []
    if not 40 <= chars <= 200:
        issues.append(f"{'expand' if chars < 40 else 'tighten'} it to 40-200 characters (now {chars})")
    if not 5 <= avg <= 20:
        issues.append(f"use sentences of 5-20 words (now ~{avg:.0f})")
    if len(verbs) < 2:
        issues.append(f"use active verbs such as {_join([_q(v) for v in suggested])}")
    if not you:
        issues.append('speak to the player with "you"/"your"')
    return _Verdict(score, reason, strength, _suggest(f"Rewrite description {quoted}", issues))


def _audience_genre_fit(ad: AdSubmission, profile: GenreProfile | None) -> _Verdict:
    tags, genre = ad.target_audience, _q(ad.genre)
    if profile is None:
        reason = f"Genre {genre} is not in the genre table, so audience fit gets a neutral score" + (
            "." if tags else ", lowered because no target audience is declared.")
        names = ", ".join(p.name for p in GENRES)
        suggestion = f"Name a specific genre instead of {genre} (one of {names}) so the ad can find its audience."
        return _Verdict(5.0 if tags else 3.0, reason, "", suggestion)
    ages = _ages_text(profile)
    banded = {tag: band for tag in tags if (band := _age_band(tag))}
    fitting = [t for t, (a, b) in banded.items() if any(lo <= b and a <= hi for lo, hi in profile.ages)]
    audience_hits = _find(" ; ".join(tags), profile.audiences)
    themes = _find(f"{ad.title} . {ad.description}", profile.keywords)
    age_points = 4 if fitting else 0 if banded or not tags else 2  # a mismatched band costs the most
    score = 1 + age_points + (2 if audience_hits else 0) + (3 if len(themes) >= 2 else 1.5 if themes else 0)
    audience = f"audience {_quote_all(tags)}" if tags else "no declared audience"
    theme_text = f"the copy mentions {_quote_all(themes) if themes else f'no {profile.name} themes'}"
    reason = f"Genre {genre} (read as {profile.name}, typically {ages}) targets {audience}, and {theme_text}."
    strength = f"Genre {genre} and {audience} are a natural fit" + (f", and {theme_text}." if themes else ".")
    issues = []
    if not tags:
        issues.append(f'declare a target audience such as "{profile.typical}" aged {ages}')
    elif banded and not fitting:
        issues.append(f"{_quote_all(list(banded))} is unusual for {profile.name} (typically {ages})")
    elif not banded:
        issues.append(f"add an age band such as {ages}")
    if tags and not audience_hits:
        issues.append(f'name the audience the genre draws, e.g. "{profile.typical}"')
    if len(themes) < 2:
        ideas = _join([_q(k) for k in profile.keywords if k not in themes][:3])
        issues.append(f"mention {profile.name} themes such as {ideas} in the title or description")
    return _Verdict(score, reason, strength, _suggest(f"Sharpen the fit of {genre}", issues))


def _visual_count_points(distinct: int) -> int:
    """3-6 distinct visuals is best; fewer is thin, many more is cluttered."""
    if 3 <= distinct <= 6:
        return 4
    if distinct == 2 or 7 <= distinct <= 10:
        return 3
    return 2 if distinct == 1 else 1 if distinct > 10 else 0


def _visual_richness(ad: AdSubmission, profile: GenreProfile | None) -> _Verdict:
    elements = ad.visual_elements
    n, distinct = len(elements), len({e.casefold() for e in elements})
    themes = " ".join(profile.keywords if profile else ())
    context = _stems(f"{ad.title} {ad.description} {ad.genre} {themes}")
    related = [e for e in elements if _stems(e) & context]
    score = _visual_count_points(distinct)
    score += 0 if n == 0 else 2 if n > 1 and distinct == n else 1 if n == 1 or distinct * 2 >= n else 0
    score += 4 if related and len(related) * 2 >= n else 2 if related else 0
    listed = _quote_all(elements) if elements else "none"
    reason = f"{_n(n, 'visual element')} ({listed}), {distinct} distinct, {len(related)} tied to the game's content."
    ties = "all tied to the game's content" if len(related) == n else f"{_quote_all(related)} tie back to the game"
    strength = f"Visuals {listed} are a focused set of {n}" + (f", {ties}." if related else ".")
    examples = _join([_q(v) for v in (profile.visuals if profile else GENERIC_VISUALS)])
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
    return _Verdict(score, reason, strength, _suggest(f"Strengthen the visuals for {_q(ad.title)}", issues))


def _duration_fit(ad: AdSubmission) -> _Verdict:
    seconds = ad.duration
    nearest = min(FORMATS, key=lambda f: (abs(seconds - f), f))
    formats = ", ".join(str(f) for f in FORMATS) + " s"
    ceiling = FORMATS[-1]
    if seconds > ceiling:  # many placements reject anything longer: a steep extra penalty
        score = max(0.0, 4.0 - (seconds - ceiling) / 10)
        reason = f"Duration {seconds} s runs {seconds - ceiling} s past the {ceiling} s ceiling of standard formats."
        suggestion = f"Cut the {seconds} s ad to {ceiling} s or less, ideally 30 s (standard formats: {formats})."
        return _Verdict(score, reason, "", suggestion)
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
    suggestion = None if gap == 0 else suggestion
    return _Verdict(score, reason, strength, suggestion)


# --- the analysis -------------------------------------------------------------------------------------


def analyze(ad: AdSubmission) -> Analysis:
    """Score ``ad``; deterministic, and every number is explained in terms of the ad's own content."""
    profile = _genre_profile(ad.genre)
    verdicts = {
        "call_to_action": _call_to_action(ad),
        "title_clarity": _title_clarity(ad),
        "description_clarity": _description_clarity(ad, profile),
        "audience_genre_fit": _audience_genre_fit(ad, profile),
        "visual_richness": _visual_richness(ad, profile),
        "duration_fit": _duration_fit(ad),
    }
    components = [
        ComponentScore(name=name, score=round(min(10.0, max(0.0, v.score)), 1), weight=WEIGHTS[name], reason=v.reason)
        for name, v in verdicts.items()
    ]
    total = round(min(10.0, max(0.0, sum(c.score * c.weight for c in components))), 1)
    ranked = sorted(zip(components, verdicts.values()), key=lambda cv: cv[0].score)  # stable: ties keep order
    best_first = sorted(ranked, key=lambda cv: -cv[0].score)
    strengths = [v.strength for c, v in best_first if c.score >= STRONG and v.strength]
    suggestions = [v.suggestion for c, v in ranked if c.score < STRONG and v.suggestion]
    if not suggestions:  # everything is strong: still offer the most useful polish
        suggestions = [v.suggestion for c, v in ranked if c.score < 10 and v.suggestion][:1] or [
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
