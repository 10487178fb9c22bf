"""A fixed corpus of sample ads for the analyser: the equivalence test pins its outputs and
``benchmarks/bench_analyzer.py`` times it.

``corpus()`` returns the same list of :class:`AdSubmission` every call: 400 ads from
``gamead_cli.generate.generate_ads(400, seed=14)`` (what ``gamead submit --count`` sends), the spec's sample, and
hand-written edge cases: every genre alias, plural and hyphenated terms, words that contain a term
("Knowledge", "Freedom"), ALL CAPS, age bands in each spelling, typographic punctuation, the four non-ASCII
characters that Python's case-insensitive regex matches to an ASCII letter (``İ ı ſ`` and the Kelvin sign),
and the models' maximum field sizes.
"""

from __future__ import annotations

from typing import Any

from gamead_cli.generate import generate_ads
from gamead_core.models import AdSubmission
from tests.support import RPG_AD, SAMPLE_AD

GENERATED = 400  # 528 ads in all
SEED = 14

_BASE: dict[str, Any] = {k: v for k, v in SAMPLE_AD.items() if k != "priority"}

_GENRE_SPELLINGS = (
    "strategy", "4X", "RTS", "Tower Defense", "war game", "puzzle", "casual", "match-3", "Match 3", "hypercasual",
    "word", "idle", "merge", "shooter", "FPS", "tps", "Battle Royale", "action", "rpg", "role-playing",
    "Role Playing", "MMORPG", "jrpg", "Action RPG", "adventure", "sports", "sport", "football", "soccer",
    "basketball", "baseball", "golf", "tennis", "racing", "racer", "driving", "car", "kart", "simulation", "sim",
    "tycoon", "farming", "life sim", "management", "sandbox", "kids", "kid", "family", "children", "educational",
    "preschool", "Other", "Puzzle RPG Racing", "strategies", "Cars", "Simulations", "ſtrategy", "RPĠ", "Kart",
    "KİDS", "kıds", "Action/Adventure", "Sports & Racing", "4x-strategy",
)

_EDGES: tuple[dict[str, Any], ...] = (
    {"callToAction": "Knowledge is Freedom"},
    {"callToAction": "DOWNLOAD NOW & CLAIM 1000 FREE GEMS!"},
    {"callToAction": "download now & claim 1000 free gems!"},
    {"callToAction": "Pre-register today for exclusive loot, limited time, last chance, ends soon this week!"},
    {"callToAction": "Preregister tonight: 50% off, 1,000.5 coins, double rewards, bonus gifts and prizes"},
    {"callToAction": "Sign up — hurry, discounts end soon"},
    {"callToAction": "Plays Playing Played Gems Gemss Coines Rewardes"},
    {"callToAction": "Get-get get_get GET123 get's get’s"},
    {"callToAction": "ok"},
    {"callToAction": "x" * 200},
    {"callToAction": "Playſ now: Klaim the ſhop bonuſ todaY"},
    {"callToAction": "Joın İnstall Wın Prıze"},
    {"title": "DRAGON KINGDOM: RISE TO POWER"},
    {"title": "Dragon Kingdom – Rise to Power"},
    {"title": "Dragon Kingdom — 2"},
    {"title": "game"},
    {"title": "A" * 200},
    {"title": "one two three four five six seven eight nine ten eleven twelve thirteen"},
    {"title": "123 456"},
    {"title": "Émpire Çastle: Ünïcode Ñame"},
    {"description": "a game"},
    {"description": "You! You? You. Build. Train. Race."},
    {"description": "Yours yourself your you. " * 20},
    {"description": ("Build your kingdom, train your dragons, and conquer new territories! " * 29).strip()},
    {"description": "Nothing here but words without verbs or pronouns at all in the text of it"},
    {"description": "Drift, race, drive and win the cup at the finish line with turbo and nitro on every track."},
    {"description": "Match tiles, solve puzzles, blast combos and relax your brain with word levels."},
    {"description": "Heroes’ quest: loot dragons' dungeons; the guild's legend is epic — magic swords!"},
    {"description": "Ваше королевство ждёт! 王国を築こう。 Build it."},
    {"description": "ſhoot, ſquad up and fıght in the arena — wın the battle royale with your gun and sniper."},
    {"targetAudience": []},
    {"targetAudience": ["6-12", "Strategy Gamers"]},
    {"targetAudience": ["Kids under 13", "Parents"], "genre": "Kids"},
    {"targetAudience": ["35-54"], "genre": "Kids"},
    {"targetAudience": ["25+", "casual"], "genre": "Puzzle"},
    {"targetAudience": ["all ages"], "genre": "family"},
    {"targetAudience": ["18 to 24", "under-10", "99+", "Ages 13–17"]},
    {"targetAudience": ["competitive esports fans", "18-34"], "genre": "FPS"},
    {"targetAudience": [f"tag {i}" for i in range(50)]},
    {"targetAudience": ["t" * 100] * 50},
    {"visualElements": []},
    {"visualElements": ["Cats", "Sunsets", "Flowers", "Rainbows"]},
    {"visualElements": ["Dragons", "dragons", "DRAGONS"]},
    {"visualElements": ["Dragons", "Castle", "Battle Scenes", "Army", "Empire", "Kingdom", "War", "Power"]},
    {"visualElements": [f"element {i}" for i in range(50)]},
    {"visualElements": ["Armies clashing", "Territories", "castle siege", "world map"]},
    {"visualElements": ["ſtrategy", "Kingdom", "İcons"]},
    {"duration": 1},
    {"duration": 6},
    {"duration": 10},
    {"duration": 22},
    {"duration": 47},
    {"duration": 59},
    {"duration": 61},
    {"duration": 75},
    {"duration": 600},
    {"title": "!!! ??? ...", "description": "1 2 3 4 5 6 7 8 9 10 — yes: words"},
    {"genre": "x" * 50},
    # the Kelvin sign (U+212A) matches "k" case-insensitively; İ (U+0130) lower-cases to two characters
    {"callToAction": "\u212aeep playing: claim \u212aing's loot", "genre": "\u212aids"},
    {"description": "\u212aingdom builders: \u0130nstall, conquer \u0130\u0130 empires and rule your \u212aingdom."},
    {"targetAudience": ["\u212aids under 13", "Famıly"], "genre": "FAM\u0130LY"},
    {"visualElements": ["\u212aingdom", "castle\u017f", "ARM\u0130ES"], "title": "\u212aingdom Wars: 2"},
)


def _edge_ads() -> list[dict[str, Any]]:
    ads = [dict(SAMPLE_AD), dict(RPG_AD)]
    ads += [{**_BASE, "genre": genre} for genre in _GENRE_SPELLINGS]
    ads += [{**_BASE, **change} for change in _EDGES]
    return ads


def corpus() -> list[AdSubmission]:
    """Every ad of the corpus, validated as the API validates them, in a fixed order."""
    wire = list(generate_ads(GENERATED, seed=SEED)) + _edge_ads()
    return [AdSubmission.model_validate(ad) for ad in wire]
