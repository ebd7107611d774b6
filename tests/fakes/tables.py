"""Azure Table Storage in memory, as far as ``shared.state`` uses it through the SDK.

What is held to the service's documented behaviour ("Table service REST API",
learn.microsoft.com/rest/api/storageservices):

* rows are kept per table by ``(PartitionKey, RowKey)`` and listed in that order;
* every write gives the row a new ETag; ``update``/``delete`` with ``IfNotModified`` and an ETag
  that is no longer the row's fail with 412 (``ResourceModifiedError``), an update of a missing
  row with 404, a create of an existing row with 409;
* MERGE adds and overwrites properties, REPLACE replaces the row;
* ``delete_entity`` of a missing row is not an error (the SDK swallows the 404);
* a transaction (``submit_transaction``) is all-or-nothing; a failing operation is named by its
  index (``TableTransactionError.index``) and nothing is applied;
* ``$filter`` supports what :mod:`shared.state.odata` builds: ``eq ne gt ge lt le`` on
  properties, ``and``/``or``/``not``, parentheses, string, ``datetime''``, ``123L``, integer and
  boolean literals; a row without the property does not match;
* ``$select`` returns only the named properties.

Not modelled: the 15-comparison limit (the store enforces it itself), size limits, throttling.
Every operation goes through :func:`tests.fakes.faults.checkpoint`, so a job's fault can fail it
before or after it takes effect (as a dropped connection does: ``ServiceRequestError`` before,
``ServiceResponseError`` after).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import EntityProperty, TableEntity, TableTransactionError, UpdateMode

from tests.fakes.faults import enter, leave

Row = dict[str, Any]


def _failure(call: str) -> BaseException:
    return ServiceResponseError(f"the connection dropped during {call}")


def _refused(call: str) -> BaseException:
    return ServiceRequestError(f"the connection was refused for {call}")


# --- $filter ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))"
    r"|(?P<dt>datetime'[^']*')"
    r"|(?P<str>'(?:[^']|'')*')"
    r"|(?P<num>-?\d+L?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse filter at {text[pos:]!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return found


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1].replace("''", "'")
    if kind == "dt":
        return datetime.fromisoformat(text[len("datetime'") : -1].replace("Z", "+00:00"))
    if kind == "num":
        return int(text.rstrip("L"))
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"not a literal: {text}")


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
}

Predicate = Callable[[Mapping[str, Any]], bool]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"trailing tokens in filter: {self.tokens[self.pos :]}")
        return predicate

    def _peek_word(self, word: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos] == ("word", word)

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_word("or"):
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek_word("and"):
            self.pos += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _unary(self) -> Predicate:
        if self._peek_word("not"):
            self.pos += 1
            inner = self._unary()
            return lambda row: not inner(row)
        if self.tokens[self.pos][0] == "open":
            self.pos += 1
            inner = self._or()
            if self.tokens[self.pos][0] != "close":
                raise ValueError("unbalanced parentheses in filter")
            self.pos += 1
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        (k1, name), (k2, op), (k3, value) = self.tokens[self.pos : self.pos + 3]
        self.pos += 3
        if k1 != "word" or k2 != "word" or op not in _OPS:
            raise ValueError(f"not a comparison: {name} {op} {value}")
        literal = _literal(k3, value)
        compare = _OPS[op]

        def test(row: Mapping[str, Any]) -> bool:
            stored = row.get(name)
            if isinstance(stored, EntityProperty):
                stored = stored.value
            if stored is None:
                return False
            for kind in (bool, datetime, str):
                if isinstance(stored, kind) != isinstance(literal, kind):
                    return False
            try:
                return compare(stored, literal)
            except TypeError:
                return False

        return test


def parse_filter(text: str) -> Predicate:
    """A row predicate for an OData ``$filter`` as :mod:`shared.state.odata` writes them."""
    return _Parser(text).parse()


# --- the service ------------------------------------------------------------------------------


class TableService:
    """Every table of one storage account, shared by all clients (thread-safe)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], tuple[Row, str]]] = {}
        self.lock = threading.RLock()
        self._etags = itertools.count(1)
        self.operations = 0

    def new_etag(self) -> str:
        return f"W/\"datetime'{next(self._etags)}'\""

    def rows(self, table: str) -> dict[tuple[str, str], tuple[Row, str]]:
        return self.tables.setdefault(table, {})

    def client(self) -> ServiceClient:
        """A ``TableServiceClient`` stand-in (one per thread, as :class:`TableAccess` asks)."""
        return ServiceClient(self)


class ServiceClient:
    """The ``TableServiceClient`` calls :class:`shared.state.tables.TableAccess` makes."""

    def __init__(self, service: TableService) -> None:
        self.service = service

    def get_table_client(self, name: str) -> TableClient:
        return TableClient(self.service, name)

    def create_table_if_not_exists(self, name: str) -> TableClient:
        with self.service.lock:
            self.service.rows(name)
        return TableClient(self.service, name)

    def delete_table(self, name: str) -> None:
        with self.service.lock:
            self.service.tables.pop(name, None)


def _entity(row: Row, etag: str, select: Sequence[str] | None = None) -> TableEntity:
    shown = {k: v for k, v in row.items() if select is None or k in select}
    entity = TableEntity(shown)
    entity._metadata = {"etag": etag, "timestamp": None}
    return entity


def _key(entity: Mapping[str, Any]) -> tuple[str, str]:
    return str(entity["PartitionKey"]), str(entity["RowKey"])


class _Query:
    """What ``query_entities`` returns: iterable rows, and ``by_page()`` with a continuation."""

    def __init__(self, rows: list[TableEntity], per_page: int | None) -> None:
        self._rows = rows
        self._per_page = per_page or 1000

    def __iter__(self) -> Iterator[TableEntity]:
        return iter(self._rows)

    def by_page(self) -> _PageIterator:
        return _PageIterator(self._rows, self._per_page)


class _PageIterator:
    """``by_page()``: one list per page; ``continuation_token`` is ``None`` after the last."""

    def __init__(self, rows: list[TableEntity], per_page: int) -> None:
        self.continuation_token: str | None = None
        self._pages = self._generate(rows, per_page)

    def _generate(self, rows: list[TableEntity], per_page: int) -> Iterator[list[TableEntity]]:
        start = 0
        while True:
            chunk = rows[start : start + per_page]
            start += per_page
            more = start < len(rows)
            self.continuation_token = f"next-{start}" if more else None
            yield chunk
            if not more:
                return

    def __iter__(self) -> _PageIterator:
        return self

    def __next__(self) -> list[TableEntity]:
        return next(self._pages)


class TableClient:
    """The ``TableClient`` calls the state stores make, on one table."""

    def __init__(self, service: TableService, name: str) -> None:
        self.service = service
        self.table_name = name
        # A query string marks the URL as one the store's own $batch path must not take
        # (shared.state.batch_wire sends through the SDK's submit_transaction then).
        self.url = f"memory://tables/{name}?in-memory"

    def _call(self, name: str, effect: Callable[[], Any]) -> Any:
        call = f"table.{name}({self.table_name})"
        kind = enter(call, _refused)
        with self.service.lock:
            self.service.operations += 1
            result = effect()
        leave(call, kind, _failure)
        return result

    # --- point operations -----------------------------------------------------------------

    def get_entity(self, partition_key: str, row_key: str, **_: Any) -> TableEntity:
        def read() -> TableEntity:
            found = self.service.rows(self.table_name).get((partition_key, row_key))
            if found is None:
                raise ResourceNotFoundError("The specified resource does not exist.")
            return _entity(*found)

        return self._call("get_entity", read)

    def create_entity(self, entity: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        return self._call("create_entity", lambda: self._create(entity))

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = UpdateMode.MERGE,
        *,
        etag: str | None = None,
        match_condition: MatchConditions | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        return self._call(
            "update_entity", lambda: self._update(entity, mode, etag, match_condition)
        )

    def upsert_entity(
        self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE, **_: Any
    ) -> dict[str, Any]:
        return self._call("upsert_entity", lambda: self._upsert(entity, mode))

    def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and isinstance(args[0], Mapping):
            partition_key, row_key = _key(args[0])
        else:
            partition_key = kwargs.pop("partition_key", None) or args[0]
            row_key = kwargs.pop("row_key", None) or args[1]
        etag = kwargs.get("etag")
        condition = kwargs.get("match_condition")

        def delete() -> None:
            # The SDK's delete_entity treats a missing row as deleted.
            with contextlib.suppress(ResourceNotFoundError):
                self._delete((partition_key, row_key), etag, condition)

        self._call("delete_entity", delete)

    # --- queries --------------------------------------------------------------------------

    def query_entities(
        self,
        query_filter: str,
        *,
        select: Sequence[str] | None = None,
        results_per_page: int | None = None,
        **_: Any,
    ) -> _Query:
        predicate = parse_filter(query_filter)

        def query() -> _Query:
            rows = self.service.rows(self.table_name)
            hits = [_entity(rows[k][0], rows[k][1], select) for k in sorted(rows)]
            return _Query(
                [e for e, k in zip(hits, sorted(rows), strict=True) if predicate(rows[k][0])],
                results_per_page,
            )

        return self._call("query_entities", query)

    def list_entities(self, **kwargs: Any) -> _Query:
        def listing() -> _Query:
            rows = self.service.rows(self.table_name)
            return _Query([_entity(*rows[k]) for k in sorted(rows)], None)

        return self._call("list_entities", listing)

    # --- transactions ---------------------------------------------------------------------

    def submit_transaction(self, operations: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        def transaction() -> list[dict[str, Any]]:
            rows = self.service.rows(self.table_name)
            saved = dict(rows)
            partitions = {str(op[1]["PartitionKey"]) for op in operations}
            if len(partitions) > 1:
                raise TableTransactionError(message="0:cross-partition transaction", index=0)
            results = []
            for index, op in enumerate(operations):
                kind, entity = op[0], op[1]
                options: Mapping[str, Any] = op[2] if len(op) > 2 else {}
                try:
                    results.append(self._apply(kind, entity, options))
                except (ResourceNotFoundError, ResourceModifiedError, ResourceExistsError) as e:
                    rows.clear()
                    rows.update(saved)  # all or nothing
                    status = (
                        404
                        if isinstance(e, ResourceNotFoundError)
                        else 412
                        if isinstance(e, ResourceModifiedError)
                        else 409
                    )
                    error = TableTransactionError(message=f"{index}:{e}", index=index)
                    error.status_code = status
                    raise error from None
            return results

        return self._call("submit_transaction", transaction)

    def _apply(self, kind: str, entity: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
        if kind == "create":
            return self._create(entity)
        if kind == "upsert":
            return self._upsert(entity, options.get("mode", UpdateMode.MERGE))
        if kind == "update":
            return self._update(
                entity,
                options.get("mode", UpdateMode.MERGE),
                options.get("etag"),
                options.get("match_condition"),
            )
        if kind == "delete":
            self._delete(_key(entity), options.get("etag"), options.get("match_condition"))
            return {}
        raise ValueError(f"unknown transaction operation {kind}")

    # --- the rules, under the service lock ------------------------------------------------

    def _create(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        rows = self.service.rows(self.table_name)
        key = _key(entity)
        if key in rows:
            raise ResourceExistsError("The specified entity already exists.")
        etag = self.service.new_etag()
        rows[key] = (dict(entity), etag)
        return {"etag": etag}

    def _update(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode,
        etag: str | None,
        condition: MatchConditions | None,
    ) -> dict[str, Any]:
        rows = self.service.rows(self.table_name)
        key = _key(entity)
        found = rows.get(key)
        if found is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if condition is MatchConditions.IfNotModified and etag is not None and etag != found[1]:
            raise ResourceModifiedError("The update condition specified in the request failed.")
        new = dict(entity) if mode is UpdateMode.REPLACE else {**found[0], **entity}
        new_etag = self.service.new_etag()
        rows[key] = (new, new_etag)
        return {"etag": new_etag}

    def _upsert(self, entity: Mapping[str, Any], mode: UpdateMode) -> dict[str, Any]:
        rows = self.service.rows(self.table_name)
        key = _key(entity)
        found = rows.get(key)
        replace = found is None or mode is UpdateMode.REPLACE
        new = dict(entity) if replace or found is None else {**found[0], **entity}
        new_etag = self.service.new_etag()
        rows[key] = (new, new_etag)
        return {"etag": new_etag}

    def _delete(
        self, key: tuple[str, str], etag: str | None, condition: MatchConditions | None
    ) -> None:
        rows = self.service.rows(self.table_name)
        found = rows.get(key)
        if found is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if condition is MatchConditions.IfNotModified and etag is not None and etag != found[1]:
            raise ResourceModifiedError("The delete condition specified in the request failed.")
        del rows[key]
