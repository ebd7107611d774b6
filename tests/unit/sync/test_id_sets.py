"""The compact GUID set holds exactly the ids given, whatever their case or braces."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sync.id_sets import GuidSet


@settings(deadline=None, max_examples=50)
@given(st.sets(st.uuids(), max_size=60), st.sets(st.uuids(), max_size=20))
def test_membership_is_exact(members: set[uuid.UUID], others: set[uuid.UUID]) -> None:
    ids = GuidSet(str(u).upper() if u.int % 2 else "{" + str(u) + "}" for u in members)
    assert len(ids) == len(members)
    for u in members:
        assert str(u) in ids
    for u in others - members:
        assert str(u) not in ids
    assert "not-a-guid" not in ids
