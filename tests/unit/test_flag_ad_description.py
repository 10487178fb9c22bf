"""regress41: an ad built from flags alone gets a made-up description; its article follows the genre's sound."""

from __future__ import annotations

import pytest

from gamead_cli.submit.reading import complete_flag_ad


@pytest.mark.parametrize(("genre", "said"), [
    ("RPG", "an RPG"), ("FPS", "an FPS"), ("MMO", "an MMO"), ("Idle", "an Idle"), ("action", "an action"),
    ("Strategy", "a Strategy"), ("Racing", "a Racing"), ("MOBA", "a MOBA"), ("CCG", "a CCG"), ("Horror", "a Horror"),
])
def test_the_made_up_description_reads_as_english(genre: str, said: str) -> None:
    """The README's own `gamead submit --title "Sky Saga" --genre RPG` was stored and analysed as "Sky Saga: a RPG
    game." (the analysis quoting it back: 'Rewrite description "Sky Saga: a RPG game."'); without the fix 5 of
    these 10 read "a" before a vowel sound."""
    ad = complete_flag_ad({"title": "Sky Saga", "genre": genre})
    assert ad["description"] == f"Sky Saga: {said} game."
