"""Key encoding: any text becomes a valid key, decodes back, and keeps its order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.state.keys import (
    MAX_KEY_LENGTH,
    SEPARATOR,
    InvalidKeyError,
    decode_component,
    encode_component,
    is_valid_key,
    join_key,
    prefix_range,
    split_key,
)

# Every code point, lone surrogates included (hypothesis leaves those out by default).
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=64)
LONG_TEXT = st.text(alphabet=ANY_CHAR, max_size=700)
PART_TEXT = st.text(alphabet=ANY_CHAR, max_size=30)
"""Short enough that two parts always fit in one composite key."""


@given(ANY_TEXT)
@settings(max_examples=400)
def test_any_short_text_round_trips_into_a_valid_key(value: str) -> None:
    """Up to 64 characters of anything always fit, are valid keys and decode back."""
    key = encode_component(value)
    assert is_valid_key(key)
    assert key.isascii()
    assert SEPARATOR not in key
    assert "'" not in key and "%" not in key
    assert decode_component(key) == value


@given(LONG_TEXT)
@settings(max_examples=100)
def test_long_text_either_round_trips_or_is_refused(value: str) -> None:
    """Longer text round-trips when it fits, and otherwise fails with InvalidKeyError."""
    try:
        key = encode_component(value)
    except InvalidKeyError:
        return
    assert len(key) <= MAX_KEY_LENGTH
    assert is_valid_key(key)
    assert decode_component(key) == value


@given(ANY_TEXT, ANY_TEXT)
@settings(max_examples=400)
def test_encoding_preserves_order(a: str, b: str) -> None:
    """Code point order of the inputs is the order of the encoded keys."""
    assert (a < b) == (encode_component(a) < encode_component(b))
    assert (a == b) == (encode_component(a) == encode_component(b))


@given(st.tuples(PART_TEXT, PART_TEXT), st.tuples(PART_TEXT, PART_TEXT))
@settings(max_examples=300)
def test_composite_keys_sort_like_tuples(a: tuple[str, str], b: tuple[str, str]) -> None:
    """Joined keys compare like the tuples they encode, and split back into them."""
    assert (a < b) == (join_key(*a) < join_key(*b))
    assert split_key(join_key(*a)) == a


@given(PART_TEXT, PART_TEXT)
def test_prefix_range_holds_exactly_the_extensions(prefix: str, other: str) -> None:
    """A key lies in the prefix range iff its first component is the prefix."""
    low, high = prefix_range(prefix)
    inside = join_key(prefix, other)
    assert low <= inside < high
    outside = join_key(prefix + "x", other)
    assert not (low <= outside < high)
    assert not (low <= encode_component(prefix) < high)  # the prefix alone has no more parts


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        ("12345", "12345"),
        ("jane.doe+x@contoso.com", "jane.0doe$2bx@contoso.0com"),
        ("a/b\\c#d?e", "a.1b[1c$23d>1e"),
        ("o'brien 100%", "o$27brien$20100$25"),
        ("tab\there", "tab$09here"),
        ("\x7f\x9f", "~11~221"),
        ("é", "~26b"),
        ("😀", "~51f582"),
        ("\ud800", "~4d782"),
        ("", ""),
    ],
)
def test_known_encodings(value: str, encoded: str) -> None:
    """Ids and e-mails stay readable; forbidden and special characters are escaped."""
    assert encode_component(value) == encoded
    assert decode_component(encoded) == value


@pytest.mark.parametrize("bad", ["a/b", "$2", "$zz", "~0", "~20a", "~1", ".9", "a!b", "'"])
def test_decode_rejects_what_encode_never_makes(bad: str) -> None:
    """Forbidden characters, truncated, non-hex, non-canonical or out-of-range escapes fail."""
    with pytest.raises(InvalidKeyError):
        decode_component(bad)


def test_keys_longer_than_the_limit_are_refused() -> None:
    """512 plain characters fit; 513 do not; composite length counts the separators."""
    assert len(encode_component("a" * MAX_KEY_LENGTH)) == MAX_KEY_LENGTH
    with pytest.raises(InvalidKeyError, match="too long"):
        encode_component("a" * (MAX_KEY_LENGTH + 1))
    with pytest.raises(InvalidKeyError, match="composite key"):
        join_key("a" * 300, "b" * 300)


def test_is_valid_key_applies_the_service_rules() -> None:
    """The checker refuses each forbidden character and over-long keys."""
    for char in ["/", "\\", "#", "?", "\x00", "\x1f", "\x7f", "\x9f"]:
        assert not is_valid_key(f"a{char}b")
    assert is_valid_key("plain-key~1 ok")
    assert not is_valid_key("x" * (MAX_KEY_LENGTH + 1))
