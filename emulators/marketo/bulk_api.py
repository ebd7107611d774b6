"""``/bulk/v1/leads*``: submit an import file and follow its job (reference B.7)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from emulators.marketo.call import Call
from emulators.marketo.envelope import ApiError, blank, invalid, success_body
from emulators.marketo.lead_api import resolve_search_field
from emulators.marketo.leads import api_origin

_MEDIA_TYPES = {
    "csv": "text/csv;charset=UTF-8",
    "tsv": "text/tab-separated-values;charset=UTF-8",
    "ssv": "text/plain;charset=UTF-8",
}


async def import_leads(call: Call) -> dict[str, Any]:
    """``POST /bulk/v1/leads.json`` (multipart ``file``; ``format``, ``lookupField``,
    ``partitionName`` as form fields or query parameters)."""
    content_type = call.request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ApiError("612")
    try:
        form = await call.request.form(max_files=1, max_fields=20)
    except HTTPException:
        raise ApiError("613") from None

    def option(name: str) -> str | None:
        value = form.get(name)
        if isinstance(value, str) and value:
            return value
        return call.param(name)

    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise blank("file")
    file_format = (option("format") or "csv").lower()
    if file_format not in _MEDIA_TYPES:
        raise invalid(f"Invalid format '{file_format}': use csv, tsv or ssv")
    instance = call.instance
    lookup = resolve_search_field(
        instance.lead_schema, option("lookupField") or "email", "lookupField"
    )
    partition_id = 1
    partition_name = option("partitionName")
    if partition_name:
        if partition_name not in instance.partitions:
            raise invalid(f"Invalid partitionName '{partition_name}'")
        partition_id = instance.partitions[partition_name]
    if option("listId"):
        raise ApiError("1013", "Static list not found")
    importer = call.emulator.bulk
    if importer.full():
        # bulk-lead-import.md: past ten queued jobs "a 1016, Too many imports error".
        raise ApiError("1016", "Too many imports")
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("Invalid file: the import file must be UTF-8 text") from None
    job = importer.submit(
        text,
        file_format,
        lookup,
        partition_id,
        api_origin("importLead", call.api_user, call.request_id),
    )
    return success_body(
        call.request_id,
        [{"batchId": job.batch_id, "importId": str(job.batch_id), "status": job.status}],
    )


def _job(call: Call) -> Any:
    job = call.emulator.bulk.get(int(call.path_params["batch_id"]))
    if job is None:
        raise ApiError("1013", "Import not found")
    return job


def import_status(call: Call) -> dict[str, Any]:
    """``GET /bulk/v1/leads/batch/{id}.json``."""
    return success_body(call.request_id, [_job(call).status_item()])


def import_failures(call: Call) -> Response:
    """``GET /bulk/v1/leads/batch/{id}/failures.json``: the failed rows plus a reason column."""
    job = _job(call)
    return Response(job.report("failures"), media_type=_MEDIA_TYPES[job.file_format])


def import_warnings(call: Call) -> Response:
    """``GET /bulk/v1/leads/batch/{id}/warnings.json``: rows with warnings plus a reason column."""
    job = _job(call)
    return Response(job.report("warnings"), media_type=_MEDIA_TYPES[job.file_format])
