"""``generate_ads``: valid, varied, deterministic submissions."""

from __future__ import annotations

from gamead_cli.generate import generate_ads
from gamead_core.models import AdSubmission


def test_generated_ads_are_valid_submissions() -> None:
    ads = list(generate_ads(300, seed=1))
    assert len(ads) == 300
    for ad in ads:
        AdSubmission.model_validate(ad)  # raises on any invalid field or unknown key
        assert set(ad) == {
            "title", "description", "genre", "targetAudience",
            "visualElements", "callToAction", "duration", "priority",
        }  # fmt: skip


def test_generated_ads_are_varied() -> None:
    ads = list(generate_ads(200))
    assert {ad["priority"] for ad in ads} == {1, 2, 3, 4, 5}
    assert len({ad["genre"] for ad in ads}) >= 6
    assert len({ad["duration"] for ad in ads}) >= 4
    assert len({ad["title"] for ad in ads}) == len(ads)  # titles carry their index


def test_generation_is_deterministic_per_seed() -> None:
    assert list(generate_ads(20, seed=7)) == list(generate_ads(20, seed=7))
    assert list(generate_ads(20, seed=7)) != list(generate_ads(20, seed=8))
    assert list(generate_ads(0)) == []
