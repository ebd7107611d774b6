"""Numbers in field values: the shape check in front of ``Decimal`` changes no answer."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from hypothesis import given
from hypothesis import strategies as st

from shared.sync.values import _number, fingerprint


def _reference(text: str) -> str | None:
    """What ``_number`` answered before the shape check: ``Decimal`` alone."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return format(number.normalize(), "f")


NUMBERISH = st.text(alphabet="0123456789+-.eE_ xa٣", max_size=12)


@given(st.one_of(NUMBERISH, st.text(max_size=20)))
def test_the_shape_check_agrees_with_decimal(text: str) -> None:
    """Any text, numeric-looking or not (underscores, exponents, Arabic-Indic digits)."""
    assert _number(text) == _reference(text)


def test_common_values() -> None:
    """Numbers normalise; names, e-mails, phones and infinities are not numbers."""
    assert _number("313000.0") == "313000"
    assert _number("-1_000.50") == "-1000.5"
    assert _number("1e3") == "1000"
    assert _number(".5") == "0.5"
    for text in ("Ada", "ada.lovelace.7.12@example.com", "+1 555 1234567", "Infinity", "NaN", "."):
        assert _number(text) is None
    assert fingerprint("313000") == fingerprint(313000.0)
