"""What becomes of a delivery whose outcome was not written (gamead_core.worker.foreign.foreign_verdict, pure):
before attack40b F2 a record neither final nor a later delivery's left the message unsettled and unsaid."""

from __future__ import annotations

import pytest

from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.worker.foreign import foreign_verdict
from tests.support import ad


def _record(status: AdStatus, delivery: str | None) -> AdRecord:
    return AdRecord(id="01m9254ac7asnas2rmggj766pc", status=status, priority=1, submitted_at=utcnow(),
                    delivery=delivery, ad=AdSubmission.model_validate(ad("Foreign")))


@pytest.mark.parametrize(("status", "delivery", "verdict"), [
    (AdStatus.COMPLETED, "7.1", "ack"),  # final
    (AdStatus.DEAD, None, "ack"),
    (AdStatus.PROCESSING, "9.1", "ack"),  # a later publish (replay) runs it: ours is an obsolete copy
    (AdStatus.PROCESSING, "7.2", "leave"),  # a later delivery of the same message: its holder settles it
    (AdStatus.QUEUED, None, "back"),  # F2's figure: the replayed record a lagging replica hid, nobody runs it
    (AdStatus.PROCESSING, "6.1", "back"),  # an earlier delivery's late claim: nobody else settles ours
])
def test_verdict(status: AdStatus, delivery: str | None, verdict: str) -> None:
    assert foreign_verdict(_record(status, delivery), "7.1") == verdict
