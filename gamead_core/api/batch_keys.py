"""The ``Idempotency-Key`` header of ``POST /ads/batch``: each ad's key derived from it (attack30a F5).

A client written to draft-ietf-httpapi-idempotency-key-header sends the header on every unsafe POST and resends the
request when it got no answer. On a batch the header was ignored, so a resent batch queued and analysed every ad
twice. Now the header's key ``K`` gives each item that has no ``idempotencyKey`` of its own the key ``K-<i>``
(``i`` its 0-based index in the batch), as ``gamead submit --idempotency-key K`` derives its ads' keys: a resent
batch answers every ad ``duplicate: true`` with its first id, and an item changed since gets its own 422
``idempotency_key_reused``. An item's own key wins. Keys of the form ``K-<n>`` are the header's: a batch where an
item's own key is the key another item derives is refused whole, before anything is queued (:func:`check_collisions`,
review30 F6: the two ads raced for one key, one of them refused at random). The header is read by the one rule of ``POST /ads``
(:func:`gamead_core.api.key_header.header_key`), and a key so long that ``K-<last index>`` would pass
:data:`gamead_core.ids.MAX_IDEMPOTENCY_KEY` is refused before anything is queued (:func:`check_derivable`).
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, TypeVar

from gamead_core.api.errors import InvalidIdempotencyKey
from gamead_core.api.key_header import HEADER
from gamead_core.ids import MAX_IDEMPOTENCY_KEY

__all__ = ["check_collisions", "check_derivable", "derived", "longest_header"]

T = TypeVar("T")


def longest_header(count: int) -> int:
    """The most characters the header may have on a batch of ``count`` ads (≥ 1): ``K-<count - 1>`` must stay
    within :data:`~gamead_core.ids.MAX_IDEMPOTENCY_KEY` (200), so 200 − 1 − the digits of the last index."""
    return MAX_IDEMPOTENCY_KEY - 1 - len(str(max(count, 1) - 1))


def check_derivable(key: str | None, count: int) -> None:
    """Refuse the header key ``key`` (None: no header, nothing to check) on a batch of ``count`` ads when a key it
    derives would be too long. Raises :class:`InvalidIdempotencyKey` (400 ``invalid_idempotency_key``, ``details``
    ``{header, max}``) saying the batch's limit."""
    if key is None or len(key) <= (most := longest_header(count)):
        return
    raise InvalidIdempotencyKey(
        f"{HEADER} is {len(key)} characters; on a batch each ad without its own idempotencyKey gets the key "
        f"'<header>-<index>' (up to '-{count - 1}' here), at most {MAX_IDEMPOTENCY_KEY} characters, so on a batch of "
        f"{count} ads the header holds at most {most}", details={"header": HEADER, "max": most})


def derived(items: list[tuple[T, str | None] | Any], key: str | None) -> list[tuple[T, str | None] | Any]:
    """``items`` (per ad: ``(ad, its own key or None)``, or anything else, e.g. the item's error, kept as it is)
    with ``(ad, f"{key}-{i}")`` in place of each ``(ad, None)`` at index ``i``; ``items`` itself when ``key`` is
    None. Check the length first (:func:`check_derivable`)."""
    if key is None:
        return items
    return [(item[0], f"{key}-{i}") if isinstance(item, tuple) and item[1] is None else item
            for i, item in enumerate(items)]


def check_collisions(items: list[tuple[T, str | None] | Any], key: str | None) -> None:
    """Refuse a batch (``items`` as :func:`derived` takes them, before derivation) where an item's own key is the
    key ``<key>-<j>`` the header ``key`` gives item ``j`` (an item without its own key): two different ads would
    share one key. Nothing to check when ``key`` is None. Raises :class:`InvalidIdempotencyKey` (400
    ``invalid_idempotency_key``, ``details`` ``{header, idempotencyKey, indexes: [the item's, the deriving
    item's]}``) for the first such item."""
    if key is None:
        return
    derives = {f"{key}-{j}": j for j, item in enumerate(items) if isinstance(item, tuple) and item[1] is None}
    for i, item in enumerate(items):
        if isinstance(item, tuple) and item[1] is not None and (j := derives.get(item[1])) is not None:
            raise InvalidIdempotencyKey(
                f"item {i}'s idempotencyKey {item[1][:60]!r} is the key item {j} gets from the {HEADER} header "
                f"('<header>-<index>'): keys '{key[:60]}-<n>' are the header's; give item {i} another key, or item "
                f"{j} its own", details={"header": HEADER, "idempotencyKey": item[1], "indexes": [i, j]})
