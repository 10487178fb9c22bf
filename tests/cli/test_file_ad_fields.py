"""An ad from a file or an NDJSON line is sent as written, so it gives every required field itself, as the README
says (flags alone fill in a description, a call to action and a duration); one with only a title and a genre is
refused naming what it lacks in gamead's words (words58: ``description: Field required; callToAction: Field
required; duration: Field required``, pydantic's phrase)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gamead_cli.main import app

LACKS = "description: required, not given; callToAction: required, not given; duration: required, not given"


def test_a_file_ad_of_a_title_and_a_genre_is_refused_naming_what_it_lacks(tmp_path: Path, api_url: str) -> None:
    ad = {"title": "Sky Saga", "genre": "RPG"}
    (tmp_path / "ad.json").write_text(json.dumps(ad))
    (tmp_path / "ads.ndjson").write_text(json.dumps(ad) + "\n")
    for name in ("ad.json", "ads.ndjson"):
        done = CliRunner().invoke(app, ["submit", str(tmp_path / name), "--api", api_url])
        said = " ".join(done.stderr.split())
        assert done.exit_code != 0 and LACKS in said, (name, done.exit_code, done.stderr)
        assert "Field required" not in said and "Traceback" not in said, said
    flags = CliRunner().invoke(app, ["submit", "--title", "Sky Saga", "--genre", "RPG", "-q", "--api", api_url])
    assert flags.exit_code == 0, flags.output  # the README's "--title and --genre suffice": for flags


def test_a_flag_ad_over_its_bounds_is_refused_for_what_was_typed_only(api_url: str) -> None:
    """attack60: `submit --title <10,000 characters> --genre Strategy` was refused `title: must have at most 200
    characters; description: must have at most 2,000 characters`: the description was the one flags make up from
    the title, never typed. Made from the title and genre cut to their bounds, it is never what is refused."""
    for title, genre, refused in (("A" * 10_000, "Strategy", "title"), ("Sky Saga", "G" * 5_000, "genre"),
                                  ("B" * 3_000, "H" * 3_000, "title")):
        done = CliRunner().invoke(app, ["submit", "--title", title, "--genre", genre, "--api", api_url])
        said = " ".join(done.stderr.split())
        assert done.exit_code == 1 and f"{refused}: must have at most" in said, said
        assert "description" not in said, said
