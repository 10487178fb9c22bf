"""Hypothesis strategies for ad fields, shared by the byte-identity tests of the hand-built record encodings
(``tests/unit/test_queued_json.py``, ``tests/unit/test_completed_json.py``)."""

from __future__ import annotations

from hypothesis import strategies as st

from gamead_core.models import is_ad_text

#: characters an ad text may hold (no surrogates, no control characters but tab and the line ends), weighted
#: towards those JSON escapes or writes as several bytes
CHARS = st.one_of(
    st.sampled_from(list('"\\\t\n\r /<>&\'é€😀\u2028\u2029\u00a0\u200b\ufeff')),
    st.characters(blacklist_categories=("Cs", "Cc")),
)


#: every character an ad text may hold, unweighted: no surrogate, no control character but tab and the line ends.
#: Hypothesis's default alphabet draws control characters so often that a filter for valid text threw most draws
#: away (flake55: test_analyzer's 300 ads took 581 tries, 281 given up, most of its ~60 s at load ~25 generating)
TEXT_CHARS = st.one_of(st.sampled_from(["\t", "\n", "\r"]), st.characters(blacklist_categories=("Cs", "Cc")))


def ad_text(max_size: int) -> st.SearchStrategy[str]:
    """A text an ad field accepts (``models.is_ad_text``), 1 to ``max_size`` characters of :data:`CHARS`."""
    return st.text(CHARS, min_size=1, max_size=max_size).filter(is_ad_text)
