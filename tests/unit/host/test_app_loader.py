"""Loading and indexing the app as the worker does, and every load error it names."""

from __future__ import annotations

import logging
import sys
import textwrap
import typing
from pathlib import Path

import azure.functions as func
import pytest

from dmsync.host.app_loader import load_app, resolve_script_path
from dmsync.host.function_index import FunctionLoadError, QueueTrigger, TimerTrigger
from shared.errors import ConfigurationError
from tests.unit.host.builders import index, only_function

QUEUE = {"connection": "AzureWebJobsStorage"}


@pytest.fixture(autouse=True)
def restore_import_state() -> typing.Iterator[None]:
    """Loading registers the app module and its folder; undo that for the tests after us."""
    saved_path = list(sys.path)
    saved_modules = {n: sys.modules.get(n) for n in ("function_app", "other_entry")}
    yield
    sys.path[:] = saved_path
    for name, module in saved_modules.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def write_app(folder: Path, body: str, name: str = "function_app.py") -> Path:
    script = folder / name
    script.write_text("import azure.functions as func\n" + textwrap.dedent(body))
    return script


def test_loads_the_single_function_app_and_indexes_it_once(tmp_path: Path) -> None:
    """The module is imported, its one FunctionApp found, get_functions() called exactly once."""
    write_app(
        tmp_path,
        """
        class CountingApp(func.FunctionApp):
            calls = 0

            def get_functions(self):
                CountingApp.calls += 1
                return super().get_functions()

        app = CountingApp()

        @app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
        def tick(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    indexed = load_app(tmp_path, {})
    assert [f.name for f in indexed.timer_functions] == ["tick"]
    import function_app  # the loader registered it under its file name

    assert function_app.CountingApp.calls == 1
    assert indexed.directory == tmp_path.resolve()


def test_get_functions_cannot_be_called_twice() -> None:
    """Why the loader calls it once: the library refuses a second call on the same app."""
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
    def tick(timer: func.TimerRequest) -> None:
        return None

    app.get_functions()
    with pytest.raises(ValueError, match="unique"):
        app.get_functions()


def test_no_function_app_is_an_error(tmp_path: Path) -> None:
    write_app(tmp_path, "x = 1\n")
    with pytest.raises(FunctionLoadError, match=r"no azure\.functions\.FunctionApp"):
        load_app(tmp_path, {})


def test_two_function_apps_are_an_error(tmp_path: Path) -> None:
    write_app(tmp_path, "first = func.FunctionApp()\nsecond = func.FunctionApp()\n")
    with pytest.raises(FunctionLoadError, match=r"more than one .*first, second"):
        load_app(tmp_path, {})


def test_python_script_file_name_picks_the_entry_script(tmp_path: Path) -> None:
    """PYTHON_SCRIPT_FILE_NAME names the script in the app folder; a file path wins outright."""
    write_app(tmp_path, "app = func.FunctionApp()\n", name="other_entry.py")
    environ = {"PYTHON_SCRIPT_FILE_NAME": "other_entry.py"}
    assert resolve_script_path(tmp_path, environ) == (tmp_path / "other_entry.py").resolve()
    assert load_app(tmp_path, environ).script.name == "other_entry.py"
    assert resolve_script_path(tmp_path / "other_entry.py", {}).name == "other_entry.py"
    with pytest.raises(ConfigurationError, match="no Functions entry script"):
        resolve_script_path(tmp_path, {})


def test_import_failure_is_reported_with_its_cause(tmp_path: Path) -> None:
    write_app(tmp_path, "raise RuntimeError('broken at import')\n")
    with pytest.raises(ConfigurationError, match="RuntimeError: broken at import"):
        load_app(tmp_path, {})


def test_setting_references_are_resolved_in_schedules_and_queue_names() -> None:
    """%Name% expressions read app settings; queue names are normalised to lower case."""
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%")
    @app.queue_output(arg_name="out", queue_name="%OUT_QUEUE%", **QUEUE)
    def tick(timer: func.TimerRequest, out: func.Out[str]) -> None:
        return None

    @app.queue_trigger(arg_name="msg", queue_name="jobs-%ENV_NAME%", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        return None

    environ = {"TICK_SCHEDULE": "0 */2 * * * *", "OUT_QUEUE": "Outbox", "ENV_NAME": "Dev"}
    timer_spec, queue_spec = index(app, environ).functions
    assert isinstance(timer_spec.trigger, TimerTrigger)
    assert timer_spec.trigger.schedule.expression == "0 */2 * * * *"
    assert timer_spec.outputs[0].queue_name == "outbox"
    assert isinstance(queue_spec.trigger, QueueTrigger)
    assert queue_spec.trigger.queue_name == "jobs-dev"


def test_unknown_setting_reference_names_the_setting() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%MISSING_QUEUE%", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"function work refers to app setting %MISSING_"):
        index(app, {})


def test_invalid_schedule_and_queue_name_are_named() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="00:05:00")
    def tick(timer: func.TimerRequest) -> None:
        return None

    with pytest.raises(ConfigurationError, match="schedule of function tick '00:05:00'"):
        index(app)

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="bad--name", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(ConfigurationError, match="'bad--name' is not a valid queue name"):
        index(app)


def test_parameter_without_binding_is_a_load_error() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    def work(message: func.QueueMessage) -> None:
        return None

    with pytest.raises(FunctionLoadError, match=r"work function: parameters \['message'\]"):
        index(app)


def test_binding_without_parameter_is_a_load_error() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="outbox", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(FunctionLoadError, match=r"bindings \['out'\] have no parameter"):
        index(app)


def test_context_parameter_is_optional_and_checked() -> None:
    """``context`` needs no binding; annotated, it must be func.Context."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    def work(msg: func.QueueMessage, context: func.Context) -> None:
        return None

    assert only_function(app).wants_context

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    def wrong(msg: func.QueueMessage, context: str) -> None:
        return None

    with pytest.raises(FunctionLoadError, match="'context' parameter is expected"):
        index(app)


def test_output_parameter_must_be_out_of_a_sendable_type() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="outbox", **QUEUE)
    def not_out(msg: func.QueueMessage, out: str) -> None:
        return None

    with pytest.raises(
        FunctionLoadError, match=r"out is an output, but .* not azure.functions.Out"
    ):
        index(app)

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="outbox", **QUEUE)
    def bad_type(msg: func.QueueMessage, out: func.Out[int]) -> None:
        return None

    with pytest.raises(FunctionLoadError, match="queue output out cannot carry"):
        index(app)

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="outbox", **QUEUE)
    def fine(msg: func.QueueMessage, out: func.Out[typing.List[str]]) -> None:  # noqa: UP006
        return None

    assert [o.arg_name for o in only_function(app).outputs] == ["out"]


def test_trigger_parameter_annotations_are_checked() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    def as_out(msg: func.Out[str]) -> None:
        return None

    with pytest.raises(FunctionLoadError, match="is an input, but is annotated"):
        index(app)

    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
    def as_int(timer: int) -> None:
        return None

    with pytest.raises(FunctionLoadError, match=r"expected func\.TimerRequest"):
        index(app)


def test_unsupported_bindings_fail_and_http_functions_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outputs other than queues cannot be honoured (error); HTTP triggers are skipped (warning)."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", **QUEUE)
    @app.table_output(arg_name="row", table_name="rows", connection="AzureWebJobsStorage")
    def to_table(msg: func.QueueMessage, row: func.Out[str]) -> None:
        return None

    with pytest.raises(FunctionLoadError, match="table binding 'row' is not supported"):
        index(app)

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    with caplog.at_level(logging.WARNING, logger="dmsync.host"):
        assert index(app).functions == ()
    assert "function ping has a httpTrigger trigger" in caplog.text
