"""Invoke one function as the worker does, and log the outcome as the host does.

Arguments are bound by name: the trigger value, a fresh ``Out`` per output parameter, and a
``Context`` when the function has a ``context`` parameter. ``async def`` functions run on the
host's event loop; plain functions run in a thread pool sized like the worker's
(``PYTHON_THREADPOOL_THREAD_COUNT``, else Python's default ``min(32, cpu + 4)``). A non-``None``
return without a ``$return`` binding is an error, as in the worker; output values are sent only
after the function succeeded [reference §2].

Every invocation ends with one log line: ``Executed 'Functions.<name>' (Succeeded|Failed,
Id=<invocation id>, Duration=<ms>ms)`` followed by trigger details (message id, dequeue count).
A function's exception is logged with its traceback and reported as a failed result; it never
propagates into the host.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from dmsync.host.bindings import Context, Out, output_messages
from dmsync.host.function_index import FunctionSpec
from dmsync.host.outputs import OutputWriter
from shared.clock import Clock
from shared.errors import ConfigurationError

logger = logging.getLogger("dmsync.host")

THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


def worker_thread_count(environ: Mapping[str, str]) -> int:
    """Threads for sync functions: ``PYTHON_THREADPOOL_THREAD_COUNT`` or ``min(32, cpu + 4)``.

    Raises:
        ConfigurationError: if the setting is not a positive whole number.
    """
    raw = environ.get(THREAD_COUNT_SETTING, "").strip()
    if not raw:
        return min(32, (os.cpu_count() or 1) + 4)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{THREAD_COUNT_SETTING} must be a whole number of at least 1")
    return int(raw)


@dataclass(frozen=True)
class InvocationResult:
    """How an invocation ended."""

    invocation_id: str
    succeeded: bool
    duration_ms: float
    error: BaseException | None = None


class Invoker:
    """Runs functions and writes their outputs."""

    def __init__(self, *, thread_pool: Executor, outputs: OutputWriter, clock: Clock) -> None:
        self._thread_pool = thread_pool
        self._outputs = outputs
        self._clock = clock

    async def invoke(
        self, spec: FunctionSpec, trigger_value: Any, *, details: Mapping[str, object]
    ) -> InvocationResult:
        """Run ``spec`` with ``trigger_value`` bound to its trigger parameter.

        Args:
            spec: the function.
            trigger_value: what the trigger parameter receives.
            details: trigger details for the log line (message id, dequeue count, past due).

        Returns:
            The result; exceptions from the function or its outputs are captured in it.

        Raises:
            asyncio.CancelledError: when the host abandons the invocation at shutdown.
        """
        invocation_id = str(uuid.uuid4())
        started = self._clock.monotonic()
        logger.debug("Executing 'Functions.%s' (Id=%s)", spec.name, invocation_id)
        try:
            await self._run(spec, trigger_value, invocation_id)
        except asyncio.CancelledError:
            logger.warning(
                "Abandoned 'Functions.%s' (Id=%s) at shutdown%s",
                spec.name,
                invocation_id,
                _details_text(details),
            )
            raise
        except Exception as error:
            duration = (self._clock.monotonic() - started) * 1000
            logger.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)%s: %s: %s",
                spec.name,
                invocation_id,
                duration,
                _details_text(details),
                type(error).__name__,
                error,
                exc_info=error,
            )
            return InvocationResult(invocation_id, False, duration, error)
        duration = (self._clock.monotonic() - started) * 1000
        logger.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)%s",
            spec.name,
            invocation_id,
            duration,
            _details_text(details),
        )
        return InvocationResult(invocation_id, True, duration)

    async def _run(self, spec: FunctionSpec, trigger_value: Any, invocation_id: str) -> None:
        outs: dict[str, Out[Any]] = {o.arg_name: Out() for o in spec.parameter_outputs}
        kwargs: dict[str, Any] = {spec.trigger.arg_name: trigger_value, **outs}
        context: Context | None = None
        if spec.wants_context:
            context = kwargs["context"] = Context(
                invocation_id=invocation_id,
                function_name=spec.name,
                function_directory=str(spec.directory),
            )
        if spec.is_async:
            if context is not None:
                context.mark_current_thread()
            result = await spec.user_function(**kwargs)
        else:
            call = functools.partial(_call_in_thread, spec.user_function, kwargs, context)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._thread_pool, contextvars.copy_context().run, call
            )
        return_output = spec.return_output
        if result is not None and return_output is None:
            raise RuntimeError(
                f"function {spec.name!r} without a $return binding returned a non-None value"
            )
        pending = [
            (output, output_messages(outs[output.arg_name].get(), binding=output.arg_name))
            for output in spec.parameter_outputs
        ]
        if return_output is not None:
            pending.append((return_output, output_messages(result, binding="$return")))
        for output, bodies in pending:
            await self._outputs.write(output, bodies)


def _call_in_thread(
    function: Callable[..., Any], kwargs: dict[str, Any], context: Context | None
) -> Any:
    if context is not None:
        context.mark_current_thread()
    return function(**kwargs)


def _details_text(details: Mapping[str, object]) -> str:
    return "".join(f" {key}={value}" for key, value in details.items())
