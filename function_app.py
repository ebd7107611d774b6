"""The Azure Functions entry point: creates the app and registers the blueprints, nothing else."""

import azure.functions as func

from functions import BLUEPRINTS
from shared.telemetry import configure_logging

# Before anything logs: redact secrets and e-mail addresses from every record (the worker's
# OpenTelemetry handler ships them to Application Insights; reference §10).
configure_logging()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
