"""The analyser's tables (``rules-2``): component weights, vocabularies, standard formats and the genre table.

Data only: ``analyzer.py`` scores with them and ``analyzer_read.py`` compiles the vocabularies once at import.

``ANALYZER_VERSION`` names the rules; an analysis keeps the version that wrote it. ``rules-2`` (attack30a F2-F4)
differs from ``rules-1`` in three rules only: the call to action's reason names its length (8-50 characters
score a point) and one under 8 characters gets a suggestion to lengthen it; a number in the call to action is
an incentive only as part of one (a % or currency sign, a multiplier, or an incentive word after it: "50%",
"$5", "2x", "1000 Free Gems"; rules-1 counted every number, "24/7" as two); an age band written high to low
("35 to 18") is read low to high (rules-1 kept it reversed, overlapping nothing). Numbers (in the call to action,
an age band, a title's number hook) are ASCII digits 0-9 and currency signs are ``CURRENCY_SIGNS``, fixed lists,
so one version gives one analysis whichever Python runs it (rules-1 read ``\\d``, any Unicode digit, whose set
grows with the interpreter's Unicode tables: review30 F17). Words, their edges and case still follow the
interpreter's tables, as in rules-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ANALYZER_VERSION: Final[str] = "rules-2"

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
#: The currency signs a number may carry to be an incentive ("$5", "4.99 €"): the Unicode currency symbols (Sc) of
#: Unicode 14.0, the tables of Python 3.11, the oldest gamead runs on; written out, so a newer interpreter that
#: knows more signs (Unicode 17's U+20C1 SAUDI RIYAL SIGN) reads the same ones.
CURRENCY_SIGNS: Final[frozenset[str]] = frozenset(
    "$\xa2\xa3\xa4\xa5\u058f\u060b\u07fe\u07ff\u09f2\u09f3\u09fb\u0af1\u0bf9\u0e3f\u17db"
    + "".join(map(chr, range(0x20A0, 0x20C1)))  # the Currency Symbols block, ₠ to ⃀ (SOM SIGN)
    + "\ua838\ufdfc\ufe69\uff04\uffe0\uffe1\uffe5\uffe6\U00011fdd\U00011fde\U00011fdf\U00011fe0\U0001e2ff\U0001ecb0"
)
FORMATS: Final[tuple[int, ...]] = (6, 15, 30, 60)  # bumper, short, standard, long (seconds)
_FORMATS_TEXT: Final[str] = ", ".join(str(f) for f in FORMATS) + " s"
GENERIC_VISUALS: Final[tuple[str, ...]] = ("gameplay footage", "main character", "reward screen")
GENERIC_VERBS: Final[tuple[str, ...]] = ("play", "explore", "win")
HOOKS: Final[tuple[tuple[str, str], ...]] = (
    ("colon subtitle", r":"), ("dash subtitle", r"\s[-–—]\s"), ("number", r"[0-9]"),
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
