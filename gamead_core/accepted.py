"""What :meth:`gamead_core.intake.Intake.submit` answers for one ad: what its 202 says, and its record."""

from __future__ import annotations

from datetime import datetime

from gamead_core.models import AdRecord, AdStatus, AdSubmission, iso_z

__all__ = ["Accepted"]


class Accepted:
    """An ad stored and queued (or a repeat answered with the first one): what the 202 says (``id``, ``status``,
    ``priority``, ``submitted_at`` and ``submitted``, its ``submittedAt`` text, and ``duplicate``) and ``record``,
    the ad's :class:`AdRecord`. A fresh ad's (:meth:`fresh`) record is made only if read: the submit path writes
    its bytes without one (:func:`gamead_core.store.queued_json.queued_record`, ~3 µs of every ``POST /ads``)."""

    __slots__ = ("id", "status", "priority", "submitted_at", "submitted", "duplicate", "_record", "_ad")

    def __init__(self, record: AdRecord, duplicate: bool) -> None:
        self._record: AdRecord | None = record
        self._ad: AdSubmission | None = None
        self.id, self.status, self.priority, self.submitted_at = (record.id, record.status, record.priority,
                                                                  record.submitted_at)
        self.submitted = iso_z(record.submitted_at)
        self.duplicate = duplicate

    @classmethod
    def fresh(cls, ad_id: str, ad: AdSubmission, when: datetime, stamp: str) -> Accepted:
        """A fresh ad's answer: ``ad`` queued as ``ad_id`` at ``when`` (an aware UTC datetime; ``stamp``: its
        text as the record has it, :func:`gamead_core.store.queued_json.stamp_text`), not a duplicate."""
        out = cls.__new__(cls)
        out._record, out._ad, out.duplicate = None, ad, False
        out.id, out.status, out.priority, out.submitted_at, out.submitted = (ad_id, AdStatus.QUEUED, ad.priority,
                                                                              when, stamp)
        return out

    @property
    def record(self) -> AdRecord:
        """The ad's record: the one read or written; for a fresh ad, made (validated) at the first read, the record
        its stored bytes are."""
        if self._record is None:
            self._record = AdRecord(id=self.id, status=AdStatus.QUEUED, priority=self.priority,
                                    submitted_at=self.submitted_at, ad=self._ad)
        return self._record
