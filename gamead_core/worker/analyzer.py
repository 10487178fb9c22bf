"""Rule-based ad analyser: pure, deterministic and explainable.

``analyze(ad)`` scores six named components (0–10 each), combines them with fixed weights into the
effectiveness score and explains every number with a sentence that quotes the ad's own content. No
randomness, clock or I/O: the same ad always gets the same ``Analysis``, list order included.

The tables are in ``analyzer_tables.py``, the reading of the ad's text in ``analyzer_text.py`` and what the rules
read from an ad, once per ad, in ``analyzer_read.py``. Cost: about 0.2x the CPU of the regex-per-term version it
replaced, with exactly its outputs but for what ``rules-2`` changed (``analyzer_tables.py``;
``benchmarks/bench_analyzer.py`` measures both in one run; README, "analyser CPU per ad"); the strength and
suggestion texts are built only when ``analyze`` uses them.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from typing import Final, NamedTuple

from gamead_core.errors import PermanentError
from gamead_core.models import NO_WORDS, AdSubmission, Analysis, has_words
from gamead_core.worker.analyzer_read import (
    _ACTION_VERBS, _AGES_TEXT, _DESCRIPTION_VERBS, _EXAMPLES, _GENRE_VOCAB, _INCENTIVES, _SECOND_PERSON, _URGENCY,
    _VERB_IDEAS, _context_stems, _Copy, _genre_profile, _incentive_numbers, _read, _read_tag,
)
from gamead_core.worker.analyzer_tables import (  # noqa: F401 - the vocabularies are read here too (tests)
    ACTION_VERBS, ANALYZER_VERSION, DESCRIPTION_VERBS, FORMATS, GENRES, HOOKS, INCENTIVES, MAX_NOTES, SECOND_PERSON,
    STOPWORDS, STRONG, URGENCY, WEIGHTS, _FORMATS_TEXT, GenreProfile,
)
from gamead_core.worker.analyzer_text import (  # noqa: F401 - the text readings are read here too (tests)
    _SENTENCE_WORDS, _TOKEN, _WORD, _ascii_words, _find, _join, _joined, _n, _q, _quote_all, _sentence_count,
    _short_stems, _stem_all, _text, _unique, _words,
)

_HOOK_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple((n, re.compile(p)) for n, p in HOOKS)


class _Verdict(NamedTuple):
    score: float
    reason: str
    strength: str
    suggestion: Callable[[], str | None]  # built on demand; None when there is nothing concrete to improve


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


# --- components ---------------------------------------------------------------------------------------


def _call_to_action(ad: AdSubmission) -> _Verdict:
    return _cta_verdict(ad.call_to_action)


#: A call to action (≤ 200 characters) is all its verdict depends on, and few distinct ones reach a worker (8 in
#: ``gamead submit``'s generator, 22 in the benchmark corpus): each is judged once while among the 1,024 most
#: recent (LRU; well under 1 MB).
@functools.lru_cache(maxsize=1024)
def _cta_verdict(cta: str) -> _Verdict:
    """Verb 4, incentives 2 (two or more 3), urgency 2, a length of 8-50 characters 1; the reason names each."""
    text = _text(cta)
    verbs, urgency = _find(text, _ACTION_VERBS), _find(text, _URGENCY)
    incentives = _unique(_incentive_numbers(cta, text.folded) + _find(text, _INCENTIVES))
    chars = len(cta)
    score = (4 if verbs else 0) + (3 if len(incentives) >= 2 else 2 if incentives else 0)
    score += (2 if urgency else 0) + (1 if 8 <= chars <= 50 else 0)
    parts = [("an action verb", verbs[:1]), ("an incentive", incentives), ("urgency", urgency)]
    has = [f"{label} ({_quote_all(hits)})" for label, hits in parts if hits]
    missing = [label for label, hits in parts if not hits]
    clauses = has + [f"no {label.removeprefix('an ')}" for label in missing]
    reason = f"Call to action {_q(cta, 200)} has {_join(clauses)}; {_n(chars, 'character')} (8-50 score a point)."
    strength = f"Call to action {_q(cta, 200)} combines {_join(has)}." if has else ""

    def suggestion() -> str | None:  # built only when analyze() uses it
        issues = []
        if missing:
            verb = verbs[0].title() if verbs else "Play"
            when = (urgency or ["today"])[0].title()
            example = f"{cta.rstrip('!. ')} Today" if verbs and incentives else f"{verb} Free {when}"
            issues.append(f"add {_join(missing)} — e.g. {_q(example)}")
        if chars < 8:
            issues.append(f"lengthen it to 8-50 characters (now {chars})")
        elif chars > 50:
            issues.append(f"shorten it to 50 characters or fewer (now {chars})")
        return _suggest(f"Improve call to action {_q(cta, 200)}", issues)

    return _Verdict(score, reason, strength, functools.cache(suggestion))  # cached with the verdict: built once


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
    sentences = max(1, _sentence_count(text))
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
    # each part's stems; the genre's and its themes' are cached. An element shares one with the union when it
    # shares one with either part (no union built).
    own, shared = copy.stems, _context_stems(ad.genre)
    related = [e for e in elements if not own.isdisjoint(stems := _short_stems(e)) or not shared.isdisjoint(stems)]
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
#: ``Analysis(**fields)`` without the keyword round trip: the model's own validator, on its wire names.
_ANALYSIS: Final[Callable[[dict[str, object]], Analysis]] = Analysis.__pydantic_validator__.validate_python


def analyze(ad: AdSubmission) -> Analysis:
    """Score ``ad``; deterministic, and every number is explained in terms of the ad's own content."""
    profile, copy = _genre_profile(ad.genre), _read(ad)
    verdicts = (  # in the order of WEIGHTS
        _cta_verdict(ad.call_to_action),  # _call_to_action(ad), without the call
        _title_clarity(ad, copy),
        _description_clarity(ad, profile, copy),
        _audience_genre_fit(ad, profile, copy),
        _visual_richness(ad, profile, copy),
        _duration_verdict(ad.duration),  # _duration_fit(ad)
    )
    scores = [_rounded(v.score) for v in verdicts]
    # Plain dicts, validated once with the Analysis (cheaper than a ComponentScore each; the same values).
    components = [{"name": name, "score": score, "weight": weight, "reason": v.reason}
                  for name, weight, score, v in zip(WEIGHTS, WEIGHTS.values(), scores, verdicts)]
    total = round(min(10.0, max(0.0, sum(map(operator.mul, scores, WEIGHTS.values())))), 1)
    # Strengths best first, suggestions worst first; sorts are stable, so ties keep the order of WEIGHTS (sorting
    # only the components each list reads is sorting all of them, then picking those).
    scored = list(zip(scores, verdicts))
    strong = sorted([sv for sv in scored if sv[0] >= STRONG and sv[1].strength], key=_SCORE, reverse=True)
    weak = sorted([sv for sv in scored if sv[0] < STRONG], key=_SCORE)
    suggestions = [s for _, v in weak if (s := v.suggestion())]
    if not suggestions:  # everything is strong: still offer the most useful polish
        suggestions = [s for score, v in sorted(scored, key=_SCORE) if score < 10 and (s := v.suggestion())][:1] or [
            f"Every component scores {STRONG:g} or more; A/B test a second call to action against "
            f"{_q(ad.call_to_action, 200)} to confirm it is the strongest."
        ]
    return _ANALYSIS({
        "effectivenessScore": total,
        "components": components,
        "strengths": [v.strength for _, v in strong[:MAX_NOTES]],
        "improvementSuggestions": suggestions[:MAX_NOTES],
        "analyzerVersion": ANALYZER_VERSION,
    })


def check_analysable(ad: AdSubmission) -> None:
    """Refuse content the analyser can never work with: no letters at all in the title and description.
    Raises :class:`PermanentError` (the ad is dead-lettered at once)."""
    if not has_words(ad.title, ad.description):  # NewAd refuses such an ad at submit; an older one still comes
        raise PermanentError(NO_WORDS)
