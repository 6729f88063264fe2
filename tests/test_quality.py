import pytest

from emobench.scoring.quality import (
    distinct_n,
    longest_repeated_ngram,
    relevance,
    sentence_count,
    text_quality,
    words,
)


def test_repetition_measures():
    assert distinct_n(words("the cat sat on the mat"), 2) == 1.0
    assert distinct_n(words("so angry so angry so angry"), 2) == pytest.approx(2 / 5)
    assert longest_repeated_ngram(words("a b c d")) == 0
    assert longest_repeated_ngram(words("I hate it, I hate it so much")) == 3


def test_sentences_and_truncation():
    assert sentence_count("I am fine. Thanks!") == 2
    assert sentence_count("One. Two. Three.") == 3
    assert sentence_count("It broke my heart to see the empty chair where my") == 1
    full = text_quality("I am fine. Thanks!")
    assert full["two_sentences"] == 1.0 and full["truncated"] == 0.0
    cut = text_quality("It broke my heart to see the empty chair where my")
    assert cut["truncated"] == 1.0
    assert text_quality("")["words"] == 0


def test_relevance_prefers_the_reply_about_the_situation():
    situation = ["I organised the shared drive.\nMy coworkers thanked me for the tidy folders."]
    on_topic = relevance(["Tidying those folders made the whole team grateful."], situation)
    off_topic = relevance(["```def get_data(): return 100```"], situation)
    assert on_topic[0] > off_topic[0] + 0.2
