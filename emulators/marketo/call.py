"""What a handler gets: the parsed request of one admitted API call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from emulators.marketo.envelope import ApiError, blank, invalid

if TYPE_CHECKING:
    from emulators.marketo.emulator import Emulator


class Call:
    """One API call: parameters (query string, or the body of a ``_method=GET`` POST), the JSON
    body, the calling API user and the request id."""

    def __init__(
        self,
        emulator: Emulator,
        request: Request,
        request_id: str,
        api_user: str,
        body: bytes,
        *,
        get_via_post: bool = False,
    ) -> None:
        self.emulator = emulator
        self.instance = emulator.instance
        self.request = request
        self.request_id = request_id
        self.api_user = api_user
        self.body = body
        self.path_params: dict[str, Any] = dict(request.path_params)
        self._params: dict[str, list[str]] = {}
        for key, value in parse_qsl(request.url.query, keep_blank_values=True):
            self._params.setdefault(key, []).append(value)
        self._json: Any = None
        self._json_parsed = False
        if get_via_post and body and not self.is_json:
            # error-codes.md 414: "POST ... with param _method=GET ... and the rest of the query
            # string in the body of the request".
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                self._params.setdefault(key, []).append(value)

    @property
    def is_json(self) -> bool:
        """Whether the body is declared as JSON."""
        return "application/json" in self.request.headers.get("content-type", "").lower()

    def param(self, name: str) -> str | None:
        """The last value of a parameter, or ``None``."""
        values = self._params.get(name)
        return values[-1] if values else None

    def param_list(self, name: str) -> list[str]:
        """Every value of a parameter, comma-separated lists and repeats flattened."""
        values: list[str] = []
        for raw in self._params.get(name, ()):
            values.extend(part.strip() for part in raw.split(",") if part.strip())
        return values

    def int_param(self, name: str, default: int, *, low: int = 1, high: int = 300) -> int:
        """An integer parameter within ``[low, high]``.

        Raises:
            ApiError: 1003 when it is not an integer in range.
        """
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"Invalid {name} '{raw}'") from None
        if not low <= value <= high:
            raise invalid(f"Invalid {name} '{raw}': must be between {low} and {high}")
        return value

    def json(self) -> dict[str, Any]:
        """The JSON object body.

        Raises:
            ApiError: 612 unless the content type is JSON, 609 for malformed JSON or a
                non-object document.
        """
        if not self._json_parsed:
            if not self.is_json:
                raise ApiError("612")
            try:
                parsed = orjson.loads(self.body) if self.body.strip() else {}
            except orjson.JSONDecodeError:
                raise ApiError("609") from None
            if not isinstance(parsed, dict):
                raise ApiError("609")
            self._json = parsed
            self._json_parsed = True
        result: dict[str, Any] = self._json
        return result

    def input_list(self, maximum: int = 300) -> list[Any]:
        """The body's ``input`` array (1 to ``maximum`` items).

        Raises:
            ApiError: 701 when missing or empty, 1003 when longer than ``maximum`` or not a list.
        """
        records = self.json().get("input")
        if records is None or records == []:
            raise blank("input")
        if not isinstance(records, list):
            raise invalid("Invalid input: must be an array")
        if len(records) > maximum:
            raise invalid(f"Batch size {len(records)} exceeds the maximum of {maximum} records")
        return records
