"""Pure parts of idempotency keys: the id a (scope, key) gets, and the fingerprint an ad is compared by."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gamead_core.ad_ids import new_ad_id
from gamead_core.intake import ad_fingerprint, keyed_ad_id
from gamead_core.models import AdSubmission
from tests.support import SAMPLE_AD

keys = st.text(min_size=1, max_size=200)
scopes = st.sampled_from(["anonymous", "token:alice", "token:bob", "token:anonymous"])


@given(scopes, scopes, keys, keys)
def test_an_id_belongs_to_one_scope_and_key(s1: str, s2: str, k1: str, k2: str) -> None:
    assert keyed_ad_id(s1, k1) == keyed_ad_id(s1, k1)
    assert (keyed_ad_id(s1, k1) == keyed_ad_id(s2, k2)) == ((s1, k1) == (s2, k2))


def test_keyed_ids_look_like_every_other_id() -> None:
    keyed, fresh = keyed_ad_id("token:ci", "order-1"), new_ad_id()
    assert len(keyed) == len(fresh) == 26 and keyed == keyed.lower()
    assert keyed_ad_id("token:ci", "order-1") != keyed_ad_id("anonymous", "order-1")
    assert keyed_ad_id("a", "b\0c") != keyed_ad_id("a\0b", "c")  # the separator cannot be forged


def test_the_fingerprint_is_of_the_ad_not_of_its_spelling() -> None:
    base = AdSubmission.model_validate(SAMPLE_AD)
    assert ad_fingerprint(base) == ad_fingerprint(AdSubmission.model_validate(dict(reversed(SAMPLE_AD.items()))))
    assert ad_fingerprint(base) == ad_fingerprint(
        AdSubmission.model_validate({**SAMPLE_AD, "title": f"  {SAMPLE_AD['title']} "}))
    without_priority = {k: v for k, v in SAMPLE_AD.items() if k != "priority"}
    assert ad_fingerprint(AdSubmission.model_validate(without_priority)) == ad_fingerprint(
        AdSubmission.model_validate({**without_priority, "priority": 3}))
    for change in ({"title": "Other"}, {"priority": 1}, {"targetAudience": ["18-34"]}, {"duration": 31}):
        assert ad_fingerprint(AdSubmission.model_validate({**SAMPLE_AD, **change})) != ad_fingerprint(base)
