"""Concrete binding objects the worker would hand a function, and output-value encoding.

``func.Out``, ``func.Context`` and its trace/retry parts are abstract in the library, so the
worker supplies its own classes; these are this host's [reference §1-2]. Trigger values are the
library's concrete ``azure.functions.queue.QueueMessage`` and ``azure.functions.timer.
TimerRequest``, built from the same fields the host sends the worker.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

T = TypeVar("T")


class Out(func.Out[T], Generic[T]):
    """An output parameter: the function ``set``\\s a value, the host ``get``\\s it afterwards."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        """Store the value to send when the function returns."""
        self._value = val

    def get(self) -> T:
        """The value set (``None`` if none was)."""
        return self._value  # type: ignore[return-value]  # None means "nothing to send"


class RpcException(func_abc.RpcException):
    """The exception of a previous attempt; empty because this host has no retry policies."""

    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class RetryContext(func_abc.RetryContext):
    """Retry state of a ``retry`` policy: always the first try here (no retry policies)."""

    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> func_abc.RpcException:
        return RpcException()


class TraceContext(func_abc.TraceContext):
    """A W3C trace context: a fresh ``traceparent`` per invocation."""

    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class Context(func.Context):
    """The ``context`` argument: invocation id, function name and folder, trace and retry."""

    def __init__(self, *, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = TraceContext(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")
        self._local = threading.local()

    def mark_current_thread(self) -> None:
        """Record the invocation id in the thread-local storage of the thread about to run it.

        The worker does this in the thread that runs the function, so code (and logging
        filters) there can tell which invocation they belong to.
        """
        self._local.invocation_id = self._invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        # The library annotates type[threading.local], but the worker hands out an instance
        # carrying ``invocation_id``; code written against Azure expects the instance.
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return RetryContext()


def queue_message(
    *,
    message_id: str,
    body: bytes,
    dequeue_count: int,
    insertion_time: datetime | None,
    expiration_time: datetime | None,
    time_next_visible: datetime | None,
    pop_receipt: str,
) -> QueueMessage:
    """The ``QueueMessage`` the worker builds from the host's trigger metadata."""
    message: QueueMessage = QueueMessage(  # type: ignore[no-untyped-call]
        id=message_id,
        body=body,
        dequeue_count=dequeue_count,
        expiration_time=expiration_time,
        insertion_time=insertion_time,
        time_next_visible=time_next_visible,
        pop_receipt=pop_receipt,
    )
    return message


def timer_request(*, past_due: bool, schedule_status: dict[str, str] | None) -> TimerRequest:
    """The ``TimerRequest`` the worker builds from the host's timer info JSON."""
    return TimerRequest(
        past_due=past_due, schedule_status=schedule_status, schedule={"AdjustForDST": True}
    )


def output_messages(value: Any, *, binding: str) -> list[bytes]:
    """The message bodies a queue output value stands for.

    As the library's queue output converter: ``str`` and ``bytes`` are one message each, a
    ``QueueMessage`` contributes its body, and an iterable of ``str``/``QueueMessage`` is one
    message per item; ``None`` sends nothing.

    Raises:
        TypeError: for any other value (the invocation then fails, as in the worker).
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value.encode("utf-8")]
    if isinstance(value, bytes | bytearray):
        return [bytes(value)]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, Iterable) and not isinstance(value, dict):
        bodies = []
        for item in value:
            if isinstance(item, str):
                bodies.append(item.encode("utf-8"))
            elif isinstance(item, func.QueueMessage):
                bodies.append(item.get_body())
            else:
                raise TypeError(
                    f"queue output {binding}: a list may hold str or QueueMessage items, "
                    f"not {type(item).__name__}"
                )
        return bodies
    raise TypeError(
        f"queue output {binding} cannot send a {type(value).__name__} "
        "(str, bytes, QueueMessage or a list of str/QueueMessage)"
    )
