"""OData error responses the emulator raises, with the codes the reference documents.

Every handler raises :class:`ODataError`; the app turns it into
``{"error":{"code":"0x...","message":"..."}}`` with ``REQ_ID`` headers
(reference §4 "Errors and limits").
"""

from __future__ import annotations

from collections.abc import Mapping

# Codes from reference §4 and PAD api-limits.md.
NOT_FOUND = "0x80040217"  # ObjectDoesNotExist, HTTP 404
DUPLICATE_KEY = "0x80040237"  # DuplicateRecord, HTTP 412
VALIDATION = "0x80044331"  # attribute length validation, HTTP 400
EXPIRED_VERSION_STAMP = "0x80044352"  # ExpiredVersionStamp
ACCESS_TOKEN_EXPIRED = "0x8005F101"  # noqa: S105 - AccessTokenExpired error code
THROTTLED_REQUESTS = "0x80072322"
THROTTLED_CONCURRENCY = "0x80072326"
# UNVERIFIED: the code Dataverse uses for OData syntax/semantic problems (unknown property,
# unsupported query option, malformed URL). 0x80060888 is what live services commonly return.
ODATA_BAD_REQUEST = "0x80060888"
# UNVERIFIED: ConcurrencyVersionMismatch hex code for an If-Match ETag mismatch.
CONCURRENCY_MISMATCH = "0x80060882"
# UNVERIFIED: payload conversion error ("Error identified in Payload provided by the user").
PAYLOAD_ERROR = "0x80048d19"
# UNVERIFIED: picklist value outside its option set.
OPTION_OUT_OF_RANGE = "0x8004431a"
# UNVERIFIED: operation not valid for the table (e.g. deleting a systemuser), HTTP 405.
INVALID_OPERATION = "0x80040203"
# UNVERIFIED: a fault injected by the control API as a generic server error.
GENERIC_SQL_ERROR = "0x80044150"


class ODataError(Exception):
    """An error answered as an OData error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str, code: str = ODATA_BAD_REQUEST) -> ODataError:
    """400 for malformed or unsupported requests."""
    return ODataError(400, code, message)


def not_found(logical_name: str, record_id: str) -> ODataError:
    """404 ObjectDoesNotExist, worded as live services word it (reference §4)."""
    return ODataError(
        404, NOT_FOUND, f"Entity '{logical_name}' With Id = {record_id} Does Not Exist"
    )


def resource_not_found(segment: str) -> ODataError:
    """404 for an unknown entity set or function."""
    return ODataError(404, ODATA_BAD_REQUEST, f"Resource not found for the segment '{segment}'.")


def duplicate_key(message: str = "A record with matching key values already exists.") -> ODataError:
    """412 DuplicateRecord (reference §3 conditional operations, §4)."""
    return ODataError(412, DUPLICATE_KEY, message)


def concurrency_mismatch() -> ODataError:
    """412 for an If-Match ETag that no longer matches (reference §3)."""
    return ODataError(
        412,
        CONCURRENCY_MISMATCH,
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def length_exceeded(column: str, logical_name: str, max_length: int) -> ODataError:
    """400 validation error, the exact wording of the $batch doc example (reference §3)."""
    return ODataError(
        400,
        VALIDATION,
        f"A validation error occurred.  The length of the '{column}' attribute of the "
        f"'{logical_name}' entity exceeded the maximum allowed length of '{max_length}'.",
    )


def value_out_of_range(
    column: str, logical_name: str, value: object, low: float, high: float
) -> ODataError:
    """400 validation error for a number outside the column's range (wording UNVERIFIED)."""
    return ODataError(
        400,
        VALIDATION,
        f"A validation error occurred.  The value {value} of '{column}' on record of type "
        f"'{logical_name}' is outside the valid range. Accepted Values: [{low:g}, {high:g}]",
    )


def option_out_of_range(column: str, logical_name: str, value: object) -> ODataError:
    """400 for a choice value that is not in the column's option set (wording UNVERIFIED)."""
    return ODataError(
        400,
        OPTION_OUT_OF_RANGE,
        f"A validation error occurred. The value {value} of '{column}' on record of type "
        f"'{logical_name}' is outside the valid range.",
    )


def payload_error(logical_name: str, detail: str) -> ODataError:
    """400 for a body value of the wrong type (wording as live services give it)."""
    return ODataError(
        400,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{logical_name}', "
        f"For more information on this error please follow this help link "
        f"https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
        f"Microsoft.OData.ODataException: {detail}",
    )


def unknown_property(prop: str, logical_name: str) -> ODataError:
    """400 for a property the table does not have."""
    return bad_request(
        f"The property '{prop}' does not exist on type 'Microsoft.Dynamics.CRM.{logical_name}'. "
        "Make sure to only use property names that are defined by the type or mark the type "
        "as open type."
    )


def query_property_not_found(prop: str, logical_name: str) -> ODataError:
    """400 for a $select/$filter/$orderby name the table does not have."""
    return bad_request(
        f"Could not find a property named '{prop}' on type 'Microsoft.Dynamics.CRM.{logical_name}'."
    )


def expired_version_stamp() -> ODataError:
    """ExpiredVersionStamp (reference §1). HTTP status undocumented: we answer 400."""
    return ODataError(
        400,
        EXPIRED_VERSION_STAMP,
        "Version stamp associated with the client has expired. Please perform a full sync.",
    )


def track_changes_option(option: str) -> ODataError:
    """The documented message for a query option under track-changes; status 400 is our choice."""
    return bad_request(
        f'The "${option}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def throttled_requests(limit: int, window_seconds: int, retry_after: int) -> ODataError:
    """429 for the request-count limit (PAD api-limits.md)."""
    return ODataError(
        429,
        THROTTLED_REQUESTS,
        f"Number of requests exceeded the limit of {limit} over time window of "
        f"{window_seconds} seconds.",
        {"Retry-After": str(retry_after)},
    )


def throttled_concurrency(limit: int, retry_after: int) -> ODataError:
    """429 for the concurrent-request limit (PAD api-limits.md)."""
    return ODataError(
        429,
        THROTTLED_CONCURRENCY,
        f"Number of concurrent requests exceeded the limit of {limit}.",
        {"Retry-After": str(retry_after)},
    )
