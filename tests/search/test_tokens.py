"""Words as the index sees them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from auditagent.search.tokens import (
    STOPWORDS,
    encode,
    index_words,
    index_words_of,
    is_indexed,
    normalize,
    words,
)


def _fullwidth(ascii_text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in ascii_text)


def _w(text: str) -> list[str]:
    return [w.text for w in words(text)]


def test_nfkc_casefold_and_punctuation() -> None:
    # Full-width letters, a ligature and German sharp s fold to their plain forms.
    assert _w(_fullwidth("CHARGEBACK") + "!") == ["chargeback"]
    assert _w("ﬁnal Straße, GUARANTEED.") == ["final", "strasse", "guaranteed"]
    assert normalize("Ǆemal") == "džemal"


def test_underscores_and_punctuation_split_words() -> None:
    assert _w("transfer_funds(account='A-1')") == ["transfer", "funds", "account", "a", "1"]
    assert _w("don't") == ["don", "t"]


def test_spans_point_at_the_raw_text() -> None:
    text = f"Well, {_fullwidth('ZEBRAFINCH')} here"
    (w,) = [w for w in words(text) if w.text == "zebrafinch"]
    assert text[w.start : w.end] == _fullwidth("ZEBRAFINCH")


def test_stopwords_are_not_indexed() -> None:
    text = "I would like the refund to be guaranteed"
    assert index_words(text) == {b"like", b"refund", b"guaranteed"}
    assert "the" in STOPWORDS


def test_fraction_splits_after_normalisation() -> None:
    assert _w("½ price") == ["1", "2", "price"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.from_regex(r"[ -~]{0,80}"))
def test_the_writers_shortcut_cuts_the_same_words(text: str) -> None:
    assert index_words(text) == {encode(w.text) for w in words(text) if is_indexed(w.text)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.from_regex(r"[ -~]{0,40}"),
        max_size=6,
    )
)
def test_a_batch_of_texts_cuts_the_words_of_each(texts: list[str]) -> None:
    """The writer's hand-over cuts a role's waiting texts in one pass: the same words."""
    assert index_words_of(texts) == set().union(*map(index_words, texts))
