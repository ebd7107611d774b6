"""Telemetry for operators: custom metrics and structured, redacted logs.

The Functions Python worker sends both to Application Insights through OpenTelemetry
(host.json ``telemetryMode``, ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY``; reference §10);
this package only records. Names shared with the workbook and alert queries are in
:mod:`shared.telemetry.names`.

>>> from shared.telemetry import SyncTelemetry, RecordTally
>>> from shared.jobs import Direction
>>> telemetry = SyncTelemetry()
>>> d2m = Direction.DYNAMICS_TO_MARKETO
>>> telemetry.records("contoso", "contact", d2m, RecordTally.WRITTEN, 300)
"""

from shared.telemetry.logs import (
    REDACTOR,
    RedactionFilter,
    Redactor,
    SyncLogger,
    configure_logging,
    job_logger,
    redact,
    sync_logger,
)
from shared.telemetry.metrics import SyncTelemetry
from shared.telemetry.names import (
    APP_LOGGER_NAME,
    METER_NAME,
    ApiOutcome,
    Dim,
    JobEnding,
    Metric,
    RecordTally,
    System,
)

__all__ = [
    "APP_LOGGER_NAME",
    "METER_NAME",
    "REDACTOR",
    "ApiOutcome",
    "Dim",
    "JobEnding",
    "Metric",
    "RecordTally",
    "RedactionFilter",
    "Redactor",
    "SyncLogger",
    "SyncTelemetry",
    "System",
    "configure_logging",
    "job_logger",
    "redact",
    "sync_logger",
]
