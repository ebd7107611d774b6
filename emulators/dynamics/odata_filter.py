"""``$filter``: a tokenizer, a recursive-descent parser and a compiler to a row predicate.

Grammar (OData 4.0 subset that Dataverse documents for ``$filter``)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | primary_cmp
    primary_cmp:= "(" expr ")" | call | operand OP operand
    call       := ("contains" | "startswith" | "endswith") "(" property "," string ")"
    operand    := property | string | number | guid | datetime | date | true | false | null

Comparison semantics follow Dataverse's SQL back end: text compares case-insensitively, and a
comparison with an empty (null) column is false except ``eq null``; ``ne 'x'`` does not match
empty columns either (SQL ``<>``; UNVERIFIED for the Web API, true of FetchXML "ne").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulators.dynamics.errors import ODataError, bad_request, query_property_not_found
from emulators.dynamics.schema import (
    CHOICE_TYPES,
    EDM_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    AttrType,
    Column,
    Table,
)

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
STRING_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Token:
    """One lexical token."""

    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    """Split a filter expression into tokens; raises 400 on an unexpected character."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise bad_request(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


# --- AST -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A constant: kind is string, number, guid, datetime, date, boolean or null."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Property:
    """A column reference."""

    name: str


@dataclass(frozen=True)
class Compare:
    """``left op right``."""

    op: str
    left: Property | Literal
    right: Property | Literal


@dataclass(frozen=True)
class Call:
    """A string function call."""

    name: str
    prop: Property
    arg: Literal


@dataclass(frozen=True)
class Not:
    """Logical negation."""

    operand: Node


@dataclass(frozen=True)
class BinaryLogic:
    """``and`` / ``or``."""

    op: str
    left: Node
    right: Node


Node = Compare | Call | Not | BinaryLogic


class Parser:
    """Recursive-descent parser over the token list."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def parse(self) -> Node:
        """The whole expression; raises 400 on trailing input."""
        if not self.tokens:
            raise bad_request("The $filter query option is empty.")
        node = self._or()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise bad_request(
                f"Syntax error: character '{token.text}' at position {token.position} is not valid "
                f"in '{self.text}'."
            )
        return node

    def _peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> Token:
        token = self._peek()
        if token is None:
            raise bad_request(f"Syntax error: unexpected end of $filter '{self.text}'.")
        self.index += 1
        return token

    def _expect(self, kind: str) -> Token:
        token = self._take()
        if token.kind != kind:
            raise bad_request(
                f"Syntax error at position {token.position} in '{self.text}': expected {kind}."
            )
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "ident" and token.text == word:
            self.index += 1
            return True
        return False

    def _or(self) -> Node:
        node = self._and()
        while self._keyword("or"):
            node = BinaryLogic("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._unary()
        while self._keyword("and"):
            node = BinaryLogic("and", node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._keyword("not"):
            return Not(self._unary())
        token = self._peek()
        if token is not None and token.kind == "lparen":
            self.index += 1
            node = self._or()
            self._expect("rparen")
            return node
        if (
            token is not None
            and token.kind == "ident"
            and token.text in STRING_FUNCTIONS
            and self.index + 1 < len(self.tokens)
            and self.tokens[self.index + 1].kind == "lparen"
        ):
            return self._call()
        left = self._operand()
        op_token = self._take()
        if op_token.kind != "ident" or op_token.text not in COMPARISONS:
            raise bad_request(
                f"Syntax error at position {op_token.position} in '{self.text}': expected a "
                "comparison operator (eq, ne, gt, ge, lt, le)."
            )
        right = self._operand()
        return Compare(op_token.text, left, right)

    def _call(self) -> Call:
        name = self._take().text
        self._expect("lparen")
        operand = self._operand()
        self._expect("comma")
        arg = self._operand()
        self._expect("rparen")
        if (
            not isinstance(operand, Property)
            or not isinstance(arg, Literal)
            or arg.kind != "string"
        ):
            raise bad_request(f"'{name}' takes a property and a string literal.")
        return Call(name, operand, arg)

    def _operand(self) -> Property | Literal:
        token = self._take()
        if token.kind == "string":
            return Literal("string", token.text[1:-1].replace("''", "'"))
        if token.kind == "number":
            raw = token.text.rstrip("mMdDfFlL")
            is_float = any(c in raw for c in ".eE")
            return Literal("number", float(raw) if is_float else int(raw))
        if token.kind == "guid":
            return Literal("guid", token.text.lower())
        if token.kind == "datetime":
            return Literal("datetime", _parse_datetime(token.text))
        if token.kind == "date":
            return Literal("date", token.text)
        if token.kind == "ident":
            if token.text in ("true", "false"):
                return Literal("boolean", token.text == "true")
            if token.text == "null":
                return Literal("null", None)
            return Property(token.text)
        raise bad_request(
            f"Syntax error at position {token.position} in '{self.text}': "
            f"unexpected '{token.text}'."
        )


def _parse_datetime(text: str) -> str:
    value = text if ("Z" in text or "+" in text[10:] or "-" in text[10:]) else text + "Z"
    if len(value) >= 17 and value[16] in "Z+-":  # no seconds given
        value = value[:16] + ":00" + value[16:]
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- compiler -------------------------------------------------------------------------------------


def compile_filter(text: str, table: Table) -> Predicate:
    """Parse and type-check ``text`` against ``table``; return a predicate over row values."""
    return _compile(Parser(text).parse(), table)


def _compile(node: Node, table: Table) -> Predicate:
    if isinstance(node, BinaryLogic):
        left, right = _compile(node.left, table), _compile(node.right, table)
        if node.op == "and":
            return lambda row: left(row) and right(row)
        return lambda row: left(row) or right(row)
    if isinstance(node, Not):
        inner = _compile(node.operand, table)
        return lambda row: not inner(row)
    if isinstance(node, Call):
        return _compile_call(node, table)
    return _compile_compare(node, table)


def _column(prop: Property, table: Table) -> Column:
    column = table.column_for_property(prop.name)
    if column is None:
        raise query_property_not_found(prop.name, table.logical_name)
    return column


def _compile_call(node: Call, table: Table) -> Predicate:
    column = _column(node.prop, table)
    if column.type not in STRING_TYPES:
        raise bad_request(
            f"No function signature for the function with name '{node.name}' matches the "
            f"specified arguments ({EDM_TYPES[column.type]}, Edm.String)."
        )
    name, needle = column.value_name, str(node.arg.value).casefold()
    if node.name == "contains":
        return lambda row: (v := row.get(name)) is not None and needle in v.casefold()
    if node.name == "startswith":
        return lambda row: (v := row.get(name)) is not None and v.casefold().startswith(needle)
    return lambda row: (v := row.get(name)) is not None and v.casefold().endswith(needle)


def _incompatible(column: Column, literal: Literal, op: str) -> ODataError:
    literal_types = {
        "string": "Edm.String",
        "number": "Edm.Int32",
        "guid": "Edm.Guid",
        "datetime": "Edm.DateTimeOffset",
        "date": "Edm.Date",
        "boolean": "Edm.Boolean",
    }
    return bad_request(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{EDM_TYPES[column.type]}' and '{literal_types.get(literal.kind, 'Edm.Untyped')}' "
        f"for operator kind '{OPERATOR_KINDS[op]}'."
    )


def _coerce(column: Column, literal: Literal, op: str) -> Any:
    """The literal in the stored form of the column, or a 400 for a type mismatch."""
    kind, value = literal.kind, literal.value
    if kind == "null":
        return None
    ctype = column.type
    if ctype in STRING_TYPES and kind == "string":
        return value.casefold()
    if (ctype in NUMBER_TYPES or ctype in CHOICE_TYPES) and kind == "number":
        return value
    if ctype is AttrType.BOOLEAN and kind == "boolean":
        return value
    if (column.is_lookup or ctype is AttrType.UNIQUEIDENTIFIER) and kind == "guid":
        return value
    if ctype is AttrType.DATETIME and kind in ("datetime", "date"):
        if column.date_only:
            return value[:10]
        return value if kind == "datetime" else f"{value}T00:00:00Z"
    raise _incompatible(column, literal, op)


def _compile_compare(node: Compare, table: Table) -> Predicate:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Literal) and isinstance(right, Property):
        left, right = right, left
        op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
    if not isinstance(left, Property) or not isinstance(right, Literal):
        raise bad_request("A comparison needs one property and one literal value.")
    column = _column(left, table)
    target = _coerce(column, right, op)
    name = column.value_name
    folds = column.type in STRING_TYPES
    if target is None:
        if op == "eq":
            return lambda row: row.get(name) is None
        if op == "ne":
            return lambda row: row.get(name) is not None
        return lambda row: False

    def value(row: dict[str, Any]) -> Any:
        v = row.get(name)
        if v is not None and folds:
            return v.casefold()
        return v

    if op == "eq":
        return lambda row: (v := value(row)) is not None and v == target
    if op == "ne":
        return lambda row: (v := value(row)) is not None and v != target
    if op == "gt":
        return lambda row: (v := value(row)) is not None and v > target
    if op == "ge":
        return lambda row: (v := value(row)) is not None and v >= target
    if op == "lt":
        return lambda row: (v := value(row)) is not None and v < target
    return lambda row: (v := value(row)) is not None and v <= target
