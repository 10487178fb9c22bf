"""Deterministic, varied, valid ad submissions for demos and load tests (``gamead submit --count``).

The same ``(n, seed)`` always yields the same ads; titles carry their index so they are unique per run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

GENRES: tuple[str, ...] = (
    "puzzle", "rpg", "strategy", "action", "casual", "racing", "simulation",
    "sports", "shooter", "adventure", "idle", "match-3",
)  # fmt: skip

_TITLE_FIRST: tuple[str, ...] = (
    "Dragon", "Pixel", "Galaxy", "Candy", "Shadow", "Kingdom", "Turbo", "Mystic",
    "Zombie", "Ocean", "Crystal", "Neon", "Farm", "Legend", "Rocket", "Jungle",
)  # fmt: skip
_TITLE_SECOND: tuple[str, ...] = (
    "Quest", "Rush", "Wars", "Saga", "Blast", "Tycoon", "Heroes", "Runner",
    "Tactics", "Legends", "Mania", "Frontier", "Arena", "Empire", "Drift", "Story",
)  # fmt: skip

_HOOKS: tuple[str, ...] = (
    "Build your empire from a single village",
    "Race through neon cities at breakneck speed",
    "Match gems and unlock magical worlds",
    "Lead your squad in real-time battles",
    "Collect hundreds of unique heroes",
    "Relax with hundreds of handcrafted levels",
    "Survive the night against endless waves",
    "Explore a vast open world full of secrets",
    "Train your team and win the championship",
    "Grow the farm of your dreams",
)
_FEATURES: tuple[str, ...] = (
    "Play offline anytime.",
    "Team up with friends in co-op mode.",
    "New events every week.",
    "Climb the global leaderboards.",
    "Stunning hand-drawn art.",
    "Easy to learn, hard to master.",
    "Daily rewards and free spins.",
    "Customize every character.",
    "Short sessions, perfect for your commute.",
    "Epic boss fights with friends.",
)

AUDIENCES: tuple[str, ...] = (
    "18-24", "25-34", "35-44", "45+", "casual gamers", "hardcore gamers", "strategy fans",
    "puzzle lovers", "parents", "commuters", "students", "competitive players", "retro fans",
)  # fmt: skip
VISUALS: tuple[str, ...] = (
    "gameplay footage", "character close-up", "explosions", "bright colors", "logo reveal",
    "slow motion", "split screen", "ui walkthrough", "boss fight", "cinematic intro",
    "reward animation", "real player reactions",
)  # fmt: skip
CALLS_TO_ACTION: tuple[str, ...] = (
    "Download now", "Play free today", "Install and claim your bonus", "Pre-register now",
    "Join the battle", "Tap to play", "Get it on the store", "Start your adventure",
)  # fmt: skip
DURATIONS: tuple[int, ...] = (6, 10, 15, 20, 30, 45, 60, 90, 120)

#: Most traffic is normal priority; a little is urgent or bulk.
PRIORITY_WEIGHTS: dict[int, int] = {1: 10, 2: 20, 3: 40, 4: 20, 5: 10}


def generate_ad(rng: random.Random, index: int) -> dict[str, Any]:
    """One submission (camelCase wire keys) drawn from ``rng``; ``index`` makes the title unique."""
    genre = rng.choice(GENRES)
    title = f"{rng.choice(_TITLE_FIRST)} {rng.choice(_TITLE_SECOND)} #{index + 1}"
    features = rng.sample(_FEATURES, k=rng.randint(1, 3))
    description = f"{rng.choice(_HOOKS)} in this {genre} game. " + " ".join(features)
    return {
        "title": title,
        "description": description,
        "genre": genre,
        "targetAudience": rng.sample(AUDIENCES, k=rng.randint(1, 3)),
        "visualElements": rng.sample(VISUALS, k=rng.randint(1, 4)),
        "callToAction": rng.choice(CALLS_TO_ACTION),
        "duration": rng.choice(DURATIONS),
        "priority": rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0],
    }


def generate_ads(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` valid :class:`~gamead_core.models.AdSubmission` bodies, deterministically from ``seed``."""
    rng = random.Random(seed)
    for index in range(n):
        yield generate_ad(rng, index)
