"""$batch: request building, response parsing, per-operation results, splitting and retries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import httpx
import pytest

from shared.dynamics import BatchOperation, ChangeSet, TableRef
from shared.dynamics.batch import (
    ResponsePart,
    boundary_of,
    build_batch_body,
    chunk_items,
    parse_batch_response,
)
from shared.errors import (
    ApiRequestError,
    RecordError,
    ThrottledError,
    TransientServiceError,
)

from .fakes import API, Script, make_client

CONTACTS = TableRef.standard("contact", "contacts")
TASKS = TableRef("task", "tasks", "activityid")
IDS = [str(uuid.UUID(int=n)) for n in range(1, 6)]


def http_part(status_line: str, headers: Sequence[str] = (), body: str = "") -> str:
    """An application/http response part (CRLF line ends, as on the wire)."""
    return "\r\n".join([status_line, *headers, "", body])


def no_content(record_id: str, entity_set: str = "contacts") -> str:
    return http_part(
        "HTTP/1.1 204 No Content",
        [
            "OData-Version: 4.0",
            f"Location: {API}{entity_set}({record_id})",
            f"OData-EntityId:{API}{entity_set}({record_id})",
        ],
    )


def failure(status: str, code: str, message: str) -> str:
    return http_part(
        f"HTTP/1.1 {status}",
        ["REQ_ID: 5ecd1cb3", "Content-Type: application/json; odata.metadata=minimal"],
        json.dumps({"error": {"code": code, "message": message}}),
    )


def represented(status: str, record_id: str) -> str:
    return http_part(
        f"HTTP/1.1 {status}",
        ["Content-Type: application/json; odata.metadata=minimal", 'ETag: W/"7"'],
        json.dumps({"@odata.etag": 'W/"7"', "contactid": record_id}),
    )


def multipart(parts: Sequence[str | list[str]], boundary: str = "batchresponse_r1") -> bytes:
    """A batch response body; a list is a change set response."""
    lines: list[str] = []
    for index, part in enumerate(parts):
        lines.append(f"--{boundary}")
        if isinstance(part, list):
            inner = f"changesetresponse_{index}"
            lines += [f"Content-Type: multipart/mixed; boundary={inner}", ""]
            for n, item in enumerate(part, start=1):
                lines += [
                    f"--{inner}",
                    "Content-Type: application/http",
                    "Content-Transfer-Encoding: binary",
                    f"Content-ID: {n}",
                    "",
                    item,
                ]
            lines.append(f"--{inner}--")
        else:
            lines += [
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                "",
                part,
            ]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode()


def batch_reply(parts: Sequence[str | list[str]], status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        content=multipart(parts),
        headers={
            "Content-Type": "multipart/mixed; boundary=batchresponse_r1",
            "OData-Version": "4.0",
        },
    )


def test_request_body_format() -> None:
    """Parts, request lines, headers and JSON bodies as the batch doc lays them out."""
    items = [
        BatchOperation.create(TASKS, {"subject": "Task 1"}),
        BatchOperation.upsert(CONTACTS, {"emailaddress1": "a@b.c"}, {"lastname": "O'Neil"}),
        BatchOperation.delete(CONTACTS, IDS[0]),
    ]
    body = build_batch_body(items, api_path="/api/data/v9.2/", batch_id="X").decode()
    assert body == "\r\n".join(
        [
            "--batch_X",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            "POST /api/data/v9.2/tasks HTTP/1.1",
            "Content-Type: application/json; type=entry",
            "",
            '{"subject":"Task 1"}',
            "--batch_X",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            "PATCH /api/data/v9.2/contacts(emailaddress1='a%40b.c')?$select=contactid HTTP/1.1",
            "Content-Type: application/json; type=entry",
            "Prefer: return=representation",
            "",
            '{"lastname":"O\'Neil"}',
            "--batch_X",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"DELETE /api/data/v9.2/contacts({IDS[0]}) HTTP/1.1",
            "",
            "",
            "--batch_X--",
            "",
        ]
    )


def test_change_set_with_content_id_references() -> None:
    """A change set nests its own boundary; every part gets a Content-ID; $1 stays a reference."""
    changeset = ChangeSet(
        (
            BatchOperation.create(CONTACTS, {"firstname": "A"}, content_id="1"),
            BatchOperation.create(
                TASKS, {"subject": "t", "regardingobjectid_contact_task@odata.bind": "$1"}
            ),
            BatchOperation("PATCH", "$1", {"lastname": "B"}),
        )
    )
    body = build_batch_body([changeset], api_path="/api/data/v9.2/", batch_id="Y").decode()
    lines = body.split("\r\n")
    assert lines[:3] == ["--batch_Y", 'Content-Type: multipart/mixed; boundary="changeset_Y_0"', ""]
    assert [line for line in lines if line.startswith("Content-ID")] == [
        "Content-ID: 1",
        "Content-ID: 2",
        "Content-ID: 3",
    ]
    assert "PATCH $1 HTTP/1.1" in lines
    assert '{"subject":"t","regardingobjectid_contact_task@odata.bind":"$1"}' in lines
    assert lines[-3:] == ["--changeset_Y_0--", "--batch_Y--", ""]


def test_change_sets_refuse_gets_and_emptiness() -> None:
    """No GET inside a change set (Dataverse docs, "Execute batch operations using the Web
    API"), and never an empty one."""
    with pytest.raises(ValueError, match="GET"):
        ChangeSet((BatchOperation("GET", "contacts"),))
    with pytest.raises(ValueError, match="at least one"):
        ChangeSet(())


def test_parse_response_with_change_set_and_lf_line_ends() -> None:
    """Change set responses come back as lists; bare-LF bodies and unquoted boundaries parse too."""
    crlf = multipart(
        [[no_content(IDS[0]), no_content(IDS[1])], represented("HTTP/1.1 200 OK"[9:], IDS[2])]
    )
    for body in (crlf, crlf.replace(b"\r\n", b"\n")):
        parsed = parse_batch_response("multipart/mixed; boundary=batchresponse_r1", body)
        assert len(parsed) == 2
        changeset, single = parsed
        assert isinstance(changeset, list) and isinstance(single, ResponsePart)
        assert [p.status for p in changeset] == [204, 204]
        assert [p.content_id for p in changeset] == ["1", "2"]
        assert changeset[0].headers["OData-EntityId"] == f"{API}contacts({IDS[0]})"
        assert single.status == 200
        assert json.loads(single.body)["contactid"] == IDS[2]


def test_boundaries_quoted_or_not() -> None:
    """Both `boundary="x"` and `boundary=x` are read."""
    assert boundary_of('multipart/mixed; boundary="batch_1"') == "batch_1"
    assert boundary_of("multipart/mixed;boundary=batch_AAA123") == "batch_AAA123"
    assert boundary_of("application/json") is None
    with pytest.raises(ApiRequestError, match="not multipart"):
        parse_batch_response("application/json", b"{}")


async def test_mixed_results_with_continue_on_error() -> None:
    """One part per operation: successes carry ids, failures their mapped RecordErrors."""
    operations = [
        BatchOperation.create(CONTACTS, {"firstname": "A"}),
        BatchOperation.create(TASKS, {"subject": "x" * 300}),
        BatchOperation.upsert(CONTACTS, {"emailaddress1": "c@d.e"}, {"lastname": "C"}),
        BatchOperation.upsert(CONTACTS, {"emailaddress1": "f@g.h"}, {"lastname": "F"}),
        BatchOperation.update(CONTACTS, IDS[4], {"lastname": "G"}),
    ]
    script = Script(
        [
            batch_reply(
                [
                    no_content(IDS[0]),
                    failure("400 Bad Request", "0x80044331", "A validation error occurred."),
                    represented("201 Created", IDS[2]),
                    represented("200 OK", IDS[3]),
                    failure("404 Not Found", "0x80040217", "contact With Id Does Not Exist"),
                ]
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch(operations)
    request = script.requests[0]
    assert str(request.url) == API + "$batch"
    assert request.headers["Prefer"] == "odata.continue-on-error"
    assert request.headers["Content-Type"].startswith('multipart/mixed; boundary="batch_')
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert [r.status for r in results] == [204, 400, 201, 200, 404]
    assert [r.id for r in results[:4]] == [IDS[0], None, IDS[2], IDS[3]]
    assert [r.created for r in (results[0], results[2], results[3])] == [True, True, False]
    validation = results[1].error
    assert isinstance(validation, RecordError)
    assert validation.code == "0x80044331"
    assert validation.record.entity == "task"
    assert "[request 5ecd1cb3]" in str(validation)
    missing = results[4].error
    assert isinstance(missing, RecordError)
    assert missing.record.dynamics_id == IDS[4]
    assert client.counters.batch_operations == 5


async def test_large_lists_are_split_at_the_limit() -> None:
    """2,500 operations go out as 1,000 + 1,000 + 500, results in order."""
    operations = [
        BatchOperation.update(CONTACTS, str(uuid.UUID(int=n)), {"x": n}) for n in range(2500)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        count = request.content.count(b"PATCH /api/data/v9.2/contacts(")
        return batch_reply([http_part("HTTP/1.1 204 No Content")] * count)

    script = Script([answer, answer, answer])
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch(operations)
    sizes = [r.content.count(b"PATCH /api/data/v9.2/contacts(") for r in script.requests]
    assert sizes == [1000, 1000, 500]
    assert len(results) == 2500 and all(r.ok for r in results)
    assert [r.operation for r in results] == operations
    assert client.counters.batch_operations == 2500
    assert client.counters.requests == 3


def test_chunking_keeps_change_sets_whole() -> None:
    """A change set is never split across batches; one bigger than the limit is refused."""
    single = BatchOperation.delete(CONTACTS, IDS[0])
    changeset = ChangeSet((single, single, single))
    assert [len(c) for c in chunk_items([single, single, changeset, single], 4)] == [2, 2]
    with pytest.raises(ValueError, match="exceeds"):
        chunk_items([changeset], 2)
    with pytest.raises(ValueError, match="max_operations"):
        chunk_items([single], 1001)


async def test_stop_on_error_marks_the_rest_not_processed() -> None:
    """Without continue-on-error: a 400 multipart; later operations and batches are not run."""
    operations = [BatchOperation.update(CONTACTS, i, {"x": 1}) for i in IDS[:4]]
    script = Script(
        [
            batch_reply(
                [
                    http_part("HTTP/1.1 204 No Content"),
                    failure("400 Bad Request", "0x80044331", "too long"),
                ],
                status=400,
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch(operations, continue_on_error=False, max_operations=3)
    assert "Prefer" not in script.requests[0].headers
    assert len(script.requests) == 1
    assert [r.status for r in results] == [204, 400, None, None]
    assert isinstance(results[1].error, RecordError)
    for skipped in results[2:]:
        assert isinstance(skipped.error, TransientServiceError)
        assert "not processed" in str(skipped.error)


async def test_change_set_results_and_whole_change_set_failure() -> None:
    """Inner results match by Content-ID; a change set failing as one response fails all."""
    good = ChangeSet(
        (
            BatchOperation.create(CONTACTS, {"firstname": "A"}),
            BatchOperation.create(CONTACTS, {"firstname": "B"}),
        )
    )
    bad = ChangeSet(
        (
            BatchOperation.update(CONTACTS, IDS[0], {"x": 1}),
            BatchOperation.update(CONTACTS, IDS[1], {"x": 1}),
        )
    )
    script = Script(
        [
            batch_reply(
                [
                    [no_content(IDS[2]), no_content(IDS[3])],
                    failure("404 Not Found", "0x80040217", "Does Not Exist"),
                ]
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch([good, bad])
    assert [r.id for r in results[:2]] == [IDS[2], IDS[3]]
    assert [r.ok for r in results] == [True, True, False, False]
    assert all(isinstance(r.error, RecordError) for r in results[2:])


async def test_a_throttled_batch_is_waited_out_and_repeated() -> None:
    """429 on the $batch request: its Retry-After is honoured and the batch sent again."""
    operations = [BatchOperation.update(CONTACTS, IDS[0], {"x": 1})]
    script = Script(
        [
            httpx.Response(
                429,
                json={"error": {"code": "0x80072322", "message": "Number of requests exceeded"}},
                headers={"Retry-After": "9"},
            ),
            batch_reply([http_part("HTTP/1.1 204 No Content")]),
        ]
    )
    client, clock = make_client(script)
    async with client:
        results = await client.execute_batch(operations)
    assert clock.sleeps == [9.0]
    assert results[0].ok
    assert script.requests[0].content != b"" and len(script.requests) == 2


async def test_batches_with_creates_are_not_repeated_after_a_gateway_error() -> None:
    """A 503 on a batch holding creates surfaces; a batch of updates is retried."""
    creates = [BatchOperation.create(CONTACTS, {"firstname": "A"})]
    updates = [BatchOperation.update(CONTACTS, IDS[0], {"x": 1})]
    script = Script(
        [
            httpx.Response(503),
            httpx.Response(503),
            batch_reply([http_part("HTTP/1.1 204 No Content")]),
        ]
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(TransientServiceError):
            await client.execute_batch(creates)
        assert len(script.requests) == 1
        results = await client.execute_batch(updates)
    assert results[0].ok
    assert len(script.requests) == 3


async def test_throttled_parts_map_to_throttled_errors() -> None:
    """A 429 inside the batch response is a ThrottledError on that operation only."""
    operations = [BatchOperation.update(CONTACTS, i, {"x": 1}) for i in IDS[:2]]
    script = Script(
        [
            batch_reply(
                [
                    http_part("HTTP/1.1 204 No Content"),
                    http_part(
                        "HTTP/1.1 429 Too Many Requests",
                        ["Retry-After: 30", "Content-Type: application/json"],
                        json.dumps({"error": {"code": "0x80072326", "message": "concurrent"}}),
                    ),
                ]
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch(operations)
    assert results[0].ok
    error = results[1].error
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 30.0


async def test_a_batch_rejected_as_a_whole_raises() -> None:
    """A plain JSON 400 (a malformed batch) is not per-operation: it raises."""
    script = Script(
        [
            httpx.Response(
                400,
                json={
                    "error": {"code": "0x0", "message": "Content-ID Reference: '$1' does not exist"}
                },
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ApiRequestError, match="does not exist"):
            await client.execute_batch([BatchOperation("PATCH", "$1", {"x": 1})])


async def test_a_failed_change_set_rolls_back_its_successful_members() -> None:
    """Members answered 204 in a change set that also failed were rolled back: not ok."""
    changeset = ChangeSet(
        (
            BatchOperation.create(CONTACTS, {"firstname": "A"}),
            BatchOperation.create(TASKS, {"subject": "x" * 300}),
        )
    )
    script = Script(
        [batch_reply([[no_content(IDS[0]), failure("400 Bad Request", "0x80044331", "too long")]])]
    )
    client, _ = make_client(script)
    async with client:
        results = await client.execute_batch([changeset])
    assert [r.ok for r in results] == [False, False]
    assert [r.error.code for r in results if r.error] == ["0x80044331", "0x80044331"]
    assert results[0].id is None
