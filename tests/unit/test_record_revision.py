"""The worker trusts a first delivery's ``Gamead-Record-Revision`` only when it is a plain revision: digits only,
bounded (issue 14.2, :mod:`gamead_core.worker.records`); anything else makes it read the record as before."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import encode
from gamead_core.worker.records import record_revision, trusted_record
from tests.support import ad


def _msg(revision: str | None, data: bytes = b"") -> Msg:
    headers = {names.HDR_AD_ID: "a1"} | ({names.HDR_RECORD_REVISION: revision} if revision is not None else {})
    return Msg(_client=None, subject=names.level_subject(3), headers=headers, data=data)  # type: ignore[arg-type]


@pytest.mark.parametrize(("header", "revision"), [
    ("1", 1), ("42", 42), (str(2**64 - 1), 2**64 - 1),
    (None, None), ("", None), ("0", None), ("-3", None), ("+3", None), (" 3", None), ("3.0", None),
    ("12x", None), ("１２", None), ("٣", None), (str(2**64), None), ("9" * 21, None), ("1" * 10_000, None),
])
def test_only_a_plain_bounded_revision_is_trusted(header: str | None, revision: int | None) -> None:
    assert record_revision(_msg(header)) == revision


def test_the_message_is_the_record_only_when_its_body_is_that_ads_record() -> None:
    """... as the API writes it (attack31a F4): a record of priority 9, or with negative attempts, is not either."""
    ad_id = new_ad_id()
    record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad("Trusted")))
    trusted = trusted_record(_msg("7", encode(record)), ad_id)
    assert trusted is not None and trusted.revision == 7 and trusted.record == record
    assert trusted_record(_msg("7", encode(record)), new_ad_id()) is None  # another ad's body: read instead
    assert trusted_record(_msg("7", b"not json"), ad_id) is None
    assert trusted_record(_msg(None, encode(record)), ad_id) is None
    for bad in ({"priority": 9}, {"priority": 0}, {"attempts": -1}, {"id": "NOT-AN-ID"}):
        assert trusted_record(_msg("7", encode(record.model_copy(update=bad))), ad_id) is None, bad
