"""Invocation as the worker does it: async/sync, context, Out parameters, $return, failures."""

from __future__ import annotations

import base64
import logging
import re
import threading
import typing
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func
import pytest

from dmsync.host.bindings import Out, output_messages, queue_message
from dmsync.host.invoker import Invoker, worker_thread_count
from dmsync.host.outputs import OutputWriter
from shared.errors import ConfigurationError
from tests.unit.host.builders import index, only_function
from tests.unit.host.fakes import FakeQueues, VirtualClock

QUEUE = {"connection": "AzureWebJobsStorage"}


def message(body: bytes = b"hello") -> func.QueueMessage:
    return queue_message(
        message_id="m-1",
        body=body,
        dequeue_count=1,
        insertion_time=None,
        expiration_time=None,
        time_next_visible=None,
        pop_receipt="r",
    )


@pytest.fixture
def queues() -> FakeQueues:
    return FakeQueues(VirtualClock())


@pytest.fixture
def invoker(queues: FakeQueues) -> typing.Iterator[Invoker]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="function")
    yield Invoker(thread_pool=pool, outputs=OutputWriter(queues, "base64"), clock=VirtualClock())
    pool.shutdown()


def sent(queues: FakeQueues, name: str) -> list[bytes]:
    return [base64.b64decode(text) for text in queues(QUEUE["connection"], name).sent]


async def test_sync_functions_run_in_the_pool_and_async_on_the_loop(invoker: Invoker) -> None:
    """Plain functions run in a worker thread; ``async def`` on the event loop's thread."""
    threads: dict[str, str] = {}
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="queue-a", **QUEUE)
    def plain(msg: func.QueueMessage) -> None:
        threads["plain"] = threading.current_thread().name

    @app.queue_trigger(arg_name="msg", queue_name="queue-b", **QUEUE)
    async def coroutine(msg: func.QueueMessage) -> None:
        threads["coroutine"] = threading.current_thread().name

    plain_spec, coroutine_spec = index(app).functions
    assert not plain_spec.is_async and coroutine_spec.is_async
    assert (await invoker.invoke(plain_spec, message(), details={})).succeeded
    assert (await invoker.invoke(coroutine_spec, message(), details={})).succeeded
    assert threads["plain"].startswith("function")
    assert threads["coroutine"] == threading.current_thread().name


async def test_context_argument_describes_the_invocation(invoker: Invoker) -> None:
    """``context`` carries the invocation id, function name and folder, trace and retry info."""
    seen: dict[str, typing.Any] = {}
    app = func.FunctionApp()

    @app.function_name("with_context")
    @app.queue_trigger(arg_name="msg", queue_name="queue-a", **QUEUE)
    def handler(msg: func.QueueMessage, context: func.Context) -> None:
        seen.update(
            invocation_id=context.invocation_id,
            function_name=context.function_name,
            function_directory=context.function_directory,
            thread_local=context.thread_local_storage.invocation_id,  # type: ignore[attr-defined]
            trace_parent=context.trace_context.trace_parent,
            retry_count=context.retry_context.retry_count,
        )

    spec = only_function(app)
    result = await invoker.invoke(spec, message(), details={})
    assert result.succeeded
    assert seen["invocation_id"] == result.invocation_id == seen["thread_local"]
    assert seen["function_name"] == "with_context"
    assert seen["function_directory"] == str(spec.directory)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", seen["trace_parent"])
    assert seen["retry_count"] == 0


async def test_out_parameters_and_return_value_are_written_base64(
    invoker: Invoker, queues: FakeQueues
) -> None:
    """str, bytes and lists go to their queues, each message base64; $return too."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbox", **QUEUE)
    @app.queue_output(arg_name="text", queue_name="text-out", **QUEUE)
    @app.queue_output(arg_name="raw", queue_name="raw-out", **QUEUE)
    @app.queue_output(arg_name="many", queue_name="many-out", **QUEUE)
    @app.queue_output(arg_name="$return", queue_name="return-out", **QUEUE)
    def fan_out(
        msg: func.QueueMessage,
        text: func.Out[str],
        raw: func.Out[bytes],
        many: func.Out[typing.List[str]],  # noqa: UP006 - the worker's check needs typing.List
    ) -> str:
        text.set("one")
        raw.set(b"\x00\xff")
        many.set(["a", "b", "c"])
        return "returned"

    result = await invoker.invoke(only_function(app), message(), details={})
    assert result.succeeded, result.error
    assert sent(queues, "text-out") == [b"one"]
    assert sent(queues, "raw-out") == [b"\x00\xff"]
    assert sent(queues, "many-out") == [b"a", b"b", b"c"]
    assert sent(queues, "return-out") == [b"returned"]


async def test_outputs_are_not_sent_when_the_function_fails(
    invoker: Invoker, queues: FakeQueues
) -> None:
    """Output values are sent only after success."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbox", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="out", **QUEUE)
    def half_done(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set("should not be sent")
        raise RuntimeError("failed after set")

    result = await invoker.invoke(only_function(app), message(), details={})
    assert not result.succeeded
    assert queues(QUEUE["connection"], "out").sent == []


async def test_returning_a_value_without_return_binding_fails(invoker: Invoker) -> None:
    """As in the worker: a non-None return needs a $return binding."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbox", **QUEUE)
    def returns(msg: func.QueueMessage) -> str:
        return "nowhere to go"

    result = await invoker.invoke(only_function(app), message(), details={})
    assert not result.succeeded
    assert isinstance(result.error, RuntimeError) and "$return" in str(result.error)


async def test_exception_is_logged_with_the_function_name(
    invoker: Invoker, caplog: pytest.LogCaptureFixture
) -> None:
    """The host logs the failure (name, id, duration, details) and returns a failed result."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbox", **QUEUE)
    async def explodes(msg: func.QueueMessage) -> None:
        raise KeyError("missing thing")

    with caplog.at_level(logging.INFO, logger="dmsync.host"):
        result = await invoker.invoke(
            only_function(app), message(), details={"message_id": "m-1", "dequeue_count": 3}
        )
    assert not result.succeeded and isinstance(result.error, KeyError)
    [record] = [r for r in caplog.records if r.name == "dmsync.host"]
    text = record.getMessage()
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "Executed 'Functions.explodes' (Failed" in text
    assert "message_id=m-1 dequeue_count=3" in text and "missing thing" in text


async def test_success_log_line_carries_trigger_details(
    invoker: Invoker, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line per successful invocation: name, outcome, id, duration, message details."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbox", **QUEUE)
    def fine(msg: func.QueueMessage) -> None:
        return None

    with caplog.at_level(logging.INFO, logger="dmsync.host"):
        result = await invoker.invoke(
            only_function(app), message(), details={"message_id": "m-1", "dequeue_count": 1}
        )
    [record] = [r for r in caplog.records if r.name == "dmsync.host"]
    assert re.fullmatch(
        rf"Executed 'Functions.fine' \(Succeeded, Id={result.invocation_id}, Duration=\d+ms\) "
        r"message_id=m-1 dequeue_count=1",
        record.getMessage(),
    )


async def test_str_and_bytes_trigger_parameters_receive_the_body(queues: FakeQueues) -> None:
    """A trigger parameter annotated str or bytes gets the decoded body, not a QueueMessage."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="queue-a", **QUEUE)
    def as_text(msg: str) -> None:
        return None

    @app.queue_trigger(arg_name="msg", queue_name="queue-b", **QUEUE)
    def as_bytes(msg: bytes) -> None:
        return None

    text_spec, bytes_spec = index(app).functions
    assert (text_spec.trigger_input, bytes_spec.trigger_input) == ("str", "bytes")


def test_output_messages_accepts_what_the_library_converter_accepts() -> None:
    """None sends nothing; str/bytes one message; QueueMessage its body; lists one per item."""
    assert output_messages(None, binding="o") == []
    assert output_messages("x", binding="o") == [b"x"]
    assert output_messages(b"\x01", binding="o") == [b"\x01"]
    assert output_messages(func.QueueMessage(body="qm"), binding="o") == [b"qm"]
    assert output_messages(["a", func.QueueMessage(body=b"b")], binding="o") == [b"a", b"b"]
    with pytest.raises(TypeError, match="not bytes"):
        output_messages(["a", b"b"], binding="o")
    with pytest.raises(TypeError, match="cannot send a dict"):
        output_messages({"a": 1}, binding="o")


def test_out_holds_the_value_set() -> None:
    """A fresh Out holds None; set() then get() returns the value."""
    out: Out[str] = Out()
    assert out.get() is None
    out.set("v")
    assert out.get() == "v"


def test_worker_thread_count_follows_the_worker() -> None:
    """PYTHON_THREADPOOL_THREAD_COUNT wins; unset means min(32, cpu + 4); junk is refused."""
    import os

    assert worker_thread_count({"PYTHON_THREADPOOL_THREAD_COUNT": "3"}) == 3
    assert worker_thread_count({}) == min(32, (os.cpu_count() or 1) + 4)
    with pytest.raises(ConfigurationError, match="PYTHON_THREADPOOL_THREAD_COUNT"):
        worker_thread_count({"PYTHON_THREADPOOL_THREAD_COUNT": "0"})
