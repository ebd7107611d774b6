"""A compact, read-only set of GUIDs: 16 bytes an id, sorted, looked up by binary search.

The delete sweep after a full read holds every live id of a table at once; as Python strings a
million GUIDs take over 100 MB, as this about 16 MB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

_WIDTH = 16


class GuidSet:
    """The ids given, fixed at construction; ``in`` takes a GUID string in any case/braces."""

    def __init__(self, ids: Iterable[str]) -> None:
        packed = sorted({uuid.UUID(str(i).strip("{}")).bytes for i in ids})
        self._data = b"".join(packed)
        self._count = len(packed)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, value: object) -> bool:
        try:
            wanted = uuid.UUID(str(value).strip("{}")).bytes
        except ValueError:
            return False
        low, high = 0, self._count
        while low < high:
            middle = (low + high) // 2
            found = self._data[middle * _WIDTH : (middle + 1) * _WIDTH]
            if found < wanted:
                low = middle + 1
            elif found > wanted:
                high = middle
            else:
                return True
        return False
