"""The CLI's shape check of an answer reads records as stored text is read (the lead's re-read of client36): an ad
stored before the C1/bidi rule (a title holding U+0085) or carrying a newer gamead's extra field is a gamead
answer, not "something that is not an ad's record" (exit 3) — `gamead ads get` of such an ad failed on the merged
tree, though the API serves it (it reads records with the same context)."""

from __future__ import annotations

import pytest

from gamead_cli.answer_shapes import check
from gamead_core.errors import ApiUnreachable

AD_ID = "01JABCDEFGHJKMNPQRSTVWXYZ0"


def _record(**ad: object) -> dict[str, object]:
    return {"id": AD_ID, "status": "queued", "priority": 3, "submittedAt": "2026-12-04T00:00:00Z", "attempts": 0,
            "ad": {"title": "Title", "description": "some words here", "genre": "rpg", "callToAction": "go",
                   "duration": 10, "priority": 3, **ad}}


def test_an_older_ad_and_a_newer_field_still_fit() -> None:
    body = _record(title="old \u0085 title", newField=1)
    assert check("http://api", "GET", f"/ads/{AD_ID}", body) is body


def test_a_record_of_the_wrong_shape_still_does_not() -> None:
    with pytest.raises(ApiUnreachable, match="is not an ad's record"):
        check("http://api", "GET", f"/ads/{AD_ID}", {**_record(), "status": "nope"})
