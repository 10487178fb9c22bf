"""The worker trusts a first delivery's ``Gamead-Record-Revision`` only when it is a plain revision: digits only,
bounded (issue 14.2, :mod:`gamead_core.worker.records`); anything else makes it read the record as before."""

from __future__ import annotations

import time

import pytest
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import encode
from gamead_core.worker.records import TRUSTED_WITHIN, record_revision, trusted_record
from tests.support import ad


def _msg(revision: str | None, data: bytes = b"", stored: float | None = None) -> Msg:
    """A work message as a first delivery brings it; ``stored``: when JetStream stored it (epoch s; default now)."""
    headers = {names.HDR_AD_ID: "a1"} | ({names.HDR_RECORD_REVISION: revision} if revision is not None else {})
    ns = int((time.time() if stored is None else stored) * 1e9)
    return Msg(_client=None, subject=names.level_subject(3), headers=headers, data=data,  # type: ignore[arg-type]
               reply=f"$JS.ACK.{names.ADS_STREAM}.workers.1.7.7.{ns}.0")


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


def test_a_message_stored_well_after_its_ads_submit_is_not_taken_as_the_record() -> None:
    """attack31b F7: a copy of a completed ad's record published later, naming the record's current revision, was
    taken as the record (analysed again, attempts from its body). Stored past TRUSTED_WITHIN after the body's
    submittedAt, it is read instead (the worker then finds the ad final)."""
    ad_id = new_ad_id()
    record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad("Copied")))
    submitted = record.submitted_at.timestamp()
    assert trusted_record(_msg("7", encode(record), stored=submitted + 0.2), ad_id) is not None
    late = _msg("7", encode(record), stored=submitted + TRUSTED_WITHIN + 1)
    assert trusted_record(late, ad_id) is None
