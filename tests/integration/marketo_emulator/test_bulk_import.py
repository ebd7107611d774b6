"""Bulk lead import: jobs, states, failure files and limits (Marketo developer docs, "Bulk
Lead Import": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/bulk-import/bulk-lead-import)."""

from __future__ import annotations

import csv
import io
import time

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok

CSV = (
    "email,firstName,dynamicsIsDeleted\n"
    "able@example.com,Able,false\n"
    "bad-address,Baker,true\n"
    "charlie@example.com,Charlie,maybe\n"
)


def _submit(rest: httpx.Client, text: str, file_format: str = "csv", **params: str) -> int:
    files = {"file": (f"leads.{file_format}", text.encode(), "text/plain")}
    body = ok(
        rest.post("/bulk/v1/leads.json", params={"format": file_format, **params}, files=files)
    )
    (job,) = body["result"]
    assert job["status"] == "Queued" and job["importId"] == str(job["batchId"])
    batch_id: int = job["batchId"]
    return batch_id


def _status(rest: httpx.Client, batch_id: int) -> dict[str, object]:
    (item,) = ok(rest.get(f"/bulk/v1/leads/batch/{batch_id}.json"))["result"]
    assert isinstance(item, dict)
    return item


def test_job_moves_from_queued_through_importing_to_complete(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.pause_bulk()
    rows = "email,firstName\n" + "".join(f"row{i}@example.com,R{i}\n" for i in range(4500))
    batch_id = _submit(rest, rows)
    assert _status(rest, batch_id)["status"] == "Queued"
    mkto.control.bulk_step()  # starts it and imports the first 2,000 rows
    status = _status(rest, batch_id)
    assert status["status"] == "Importing" and status["message"] == "Import in progress"
    mkto.control.bulk_step(2)
    status = _status(rest, batch_id)
    assert status == {
        "batchId": batch_id,
        "importId": str(batch_id),
        "status": "Complete",
        "numOfLeadsProcessed": 4500,
        "numOfRowsFailed": 0,
        "numOfRowsWithWarning": 0,
        "message": "Import succeeded, 4500 records imported (4500 members)",
    }
    assert len(mkto.control.leads()) == 4500


def test_the_worker_advances_jobs_on_its_own(rest: httpx.Client) -> None:
    batch_id = _submit(rest, "email\nsolo@example.com\n")
    for _ in range(1000):
        if _status(rest, batch_id)["status"] == "Complete":
            break
        time.sleep(0.01)
    assert _status(rest, batch_id)["numOfLeadsProcessed"] == 1


def test_failed_rows_are_reported_in_the_failures_file(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.pause_bulk()
    batch_id = _submit(rest, CSV)
    mkto.control.bulk_step()
    status = _status(rest, batch_id)
    assert status["numOfLeadsProcessed"] == 1 and status["numOfRowsFailed"] == 2
    assert (
        status["message"]
        == "Import completed with errors, 1 records imported (1 members), 2 failed"
    )
    response = rest.get(f"/bulk/v1/leads/batch/{batch_id}/failures.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["email", "firstName", "dynamicsIsDeleted", "Import Failure Reason"]
    assert [row[0] for row in rows[1:]] == ["bad-address", "charlie@example.com"]
    assert "email" in rows[1][3] and "boolean" in rows[2][3]


def test_repeated_keys_become_warnings_and_tsv_ssv_formats(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.pause_bulk()
    tsv = _submit(rest, "email\tcity\ndup@example.com\tLyon\ndup@example.com\tPorto\n", "tsv")
    ssv = _submit(rest, "email;city\nsemi@example.com;Leeds\n", "ssv")
    mkto.control.bulk_step()
    assert _status(rest, tsv)["numOfRowsWithWarning"] == 1
    warnings = rest.get(f"/bulk/v1/leads/batch/{tsv}/warnings.json").text.splitlines()
    assert warnings[0] == "email\tcity\tImport Warning Reason"
    assert warnings[1].startswith("dup@example.com\tPorto\t")
    cities = {lead["email"]: lead.get("city") for lead in mkto.control.leads()}
    assert cities == {"dup@example.com": "Porto", "semi@example.com": "Leeds"}
    assert _status(rest, ssv)["status"] == "Complete"


def test_lookup_by_id_only_updates(rest: httpx.Client, mkto: RunningMarketo) -> None:
    (lead_id,) = mkto.control.seed(leads=[{"email": "keep@example.com"}])["leads"]
    mkto.control.pause_bulk()
    batch_id = _submit(rest, f"id,city\n{lead_id},Osaka\n999999,Nowhere\n", lookupField="id")
    mkto.control.bulk_step()
    status = _status(rest, batch_id)
    assert status["numOfLeadsProcessed"] == 1 and status["numOfRowsFailed"] == 1
    assert len(mkto.control.leads()) == 1


def test_bad_files_fail_the_job(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.pause_bulk()
    unknown = _submit(rest, "email,shoeSize\na@example.com,42\n")
    no_lookup = _submit(rest, "firstName\nAnn\n")
    mkto.control.bulk_step()
    assert _status(rest, unknown)["status"] == "Failed"
    assert "shoeSize" in str(_status(rest, unknown)["message"])
    assert _status(rest, no_lookup)["status"] == "Failed"


def test_two_import_at_once_and_at_most_ten_are_queued(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.pause_bulk()
    big = "email\n" + "".join(f"b{i}@example.com\n" for i in range(2500))
    ids = [_submit(rest, big) for _ in range(10)]
    files = {"file": ("leads.csv", b"email\nx@example.com\n", "text/csv")}
    refused = rest.post("/bulk/v1/leads.json", params={"format": "csv"}, files=files)
    assert error_code(refused) == "1016"
    assert refused.json()["errors"][0]["message"] == "Too many imports"
    mkto.control.bulk_step()
    states = [_status(rest, batch_id)["status"] for batch_id in ids]
    assert states == ["Importing"] * 2 + ["Queued"] * 8
    mkto.control.bulk_step()  # the first two finish
    states = [_status(rest, batch_id)["status"] for batch_id in ids]
    assert states == ["Complete"] * 2 + ["Queued"] * 8
    mkto.control.bulk_step()  # the next two start
    states = [_status(rest, batch_id)["status"] for batch_id in ids]
    assert states == ["Complete"] * 2 + ["Importing"] * 2 + ["Queued"] * 6
    _submit(rest, "email\nnow-fits@example.com\n")


def test_submission_errors(rest: httpx.Client, mkto: RunningMarketo) -> None:
    files = {"file": ("leads.csv", b"email\na@example.com\n", "text/csv")}
    assert (
        error_code(rest.post("/bulk/v1/leads.json", params={"format": "xml"}, files=files))
        == "1003"
    )
    assert (
        error_code(
            rest.post("/bulk/v1/leads.json", data={"format": "csv"}, files={"other": ("x", b"y")})
        )
        == "701"
    )
    assert error_code(rest.post("/bulk/v1/leads.json", json={"file": "x"})) == "612"
    assert error_code(rest.get("/bulk/v1/leads/batch/424242.json")) == "1013"
    mkto.control.set_limits(max_bulk_body_bytes=2048)
    too_big = {"file": ("leads.csv", b"email\n" + b"z@example.com\n" * 200, "text/csv")}
    assert (
        error_code(
            rest.post("/bulk/v1/leads.json", params={"format": "csv"}, files=too_big), status=413
        )
        == "413"
    )


def test_batch_ids_expire_after_seven_days(
    rest: httpx.Client, mkto: RunningMarketo, token: str
) -> None:
    batch_id = _submit(rest, "email\nold@example.com\n")
    mkto.control.set_token_ttl(30 * 86_400)
    fresh = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials).json()
    assert fresh["access_token"] == token  # still the same live token
    mkto.control.expire_tokens()
    new_token = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials).json()[
        "access_token"
    ]
    mkto.control.advance_clock(8 * 86_400)
    response = httpx.get(
        f"{mkto.base_url}/bulk/v1/leads/batch/{batch_id}.json",
        headers={"Authorization": f"Bearer {new_token}"},
    )
    assert error_code(response) == "1013"


def test_access_token_as_a_form_field_as_in_the_curl_example(
    mkto: RunningMarketo, token: str
) -> None:
    response = httpx.post(
        f"{mkto.base_url}/bulk/v1/leads.json",
        data={"format": "csv", "access_token": token},
        files={"file": ("lead_data.csv", b"email\ncurl@example.com\n", "text/csv")},
    )
    assert ok(response)["result"][0]["status"] == "Queued"
