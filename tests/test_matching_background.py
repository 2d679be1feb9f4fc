"""The matcher's background word frequencies, read from wordfreq's file without importing it."""

from __future__ import annotations

from wordfreq import get_frequency_list, zipf_frequency

from bot.matching import background


def test_the_shipped_list_is_read_exactly_as_wordfreq_reads_it():
    # A new wordfreq that changes the file's format or ships a bigger Vietnamese list ("best"
    # would take it) fails here instead of silently changing what the matcher calls common.
    assert background._frequency_buckets() == get_frequency_list(background.LANGUAGE)


def test_zipf_values_agree_with_wordfreq():
    for word in ("là", "hông", "mần", "căn", "cước"):
        assert abs(background.zipf(word, word) - zipf_frequency(word, "vi")) < 0.011, word
    assert background.zipf("vneid", "vneid") == 0.0
    assert background.zipf("hong") >= zipf_frequency("hông", "vi")  # typed bare: its commonest form
