"""Turn the app's ``Function`` objects into what the host runs, checked as the worker checks.

For each function the worker requires [reference §2]:

* the Python parameters to be exactly the binding names (the trigger and every non-``$return``
  binding), plus an optional ``context`` parameter that receives an ``azure.functions.Context``;
* an output binding's parameter, when annotated, to be ``func.Out[T]`` with a ``T`` the binding
  can carry (for a queue: ``str``, ``bytes``, ``QueueMessage`` or a list of them), and an input
  parameter never to be annotated ``func.Out``;
* a trigger parameter's annotation to fit the trigger (``func.QueueMessage``, ``str`` or
  ``bytes`` for queues; ``func.TimerRequest`` for timers).

``%Setting%`` references in schedules and queue names are resolved from the app settings here,
and queue names are normalised to lower case and validated as the extension does.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.queue import QueueMessageOutConverter

from dmsync.host.app_settings import resolve_setting_references
from dmsync.host.ncrontab import NcrontabSchedule
from shared.errors import ConfigurationError

logger = logging.getLogger("dmsync.host")

HOST_STORAGE = "AzureWebJobsStorage"
RETURN_BINDING = "$return"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")

TriggerInput = Literal["object", "str", "bytes"]
"""How the trigger value reaches the function: the SDK object, or the body as str/bytes."""


class FunctionLoadError(ConfigurationError):
    """The app cannot be indexed or one of its functions does not fit its bindings."""


@dataclass(frozen=True)
class TimerTrigger:
    """A timer trigger, its schedule resolved."""

    arg_name: str
    schedule: NcrontabSchedule
    run_on_startup: bool
    use_monitor: bool | None
    """``None``: decided from the schedule (on unless it fires more than once a minute)."""


@dataclass(frozen=True)
class QueueTrigger:
    """A queue trigger, its queue name resolved and normalised."""

    arg_name: str
    queue_name: str
    connection: str


@dataclass(frozen=True)
class QueueOutput:
    """A queue output binding (``arg_name`` may be ``$return``)."""

    arg_name: str
    queue_name: str
    connection: str


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host runs it."""

    name: str
    user_function: Callable[..., Any] = field(repr=False)
    trigger: TimerTrigger | QueueTrigger
    trigger_input: TriggerInput
    outputs: tuple[QueueOutput, ...]
    wants_context: bool
    is_async: bool
    directory: Path

    @property
    def return_output(self) -> QueueOutput | None:
        """The ``$return`` output binding, if the function has one."""
        return next((o for o in self.outputs if o.arg_name == RETURN_BINDING), None)

    @property
    def parameter_outputs(self) -> tuple[QueueOutput, ...]:
        """Output bindings passed as ``func.Out`` parameters."""
        return tuple(o for o in self.outputs if o.arg_name != RETURN_BINDING)


@dataclass(frozen=True)
class IndexedApp:
    """The app's functions, ready to run."""

    script: Path
    functions: tuple[FunctionSpec, ...]

    @property
    def directory(self) -> Path:
        """The app folder (where ``host.json`` and ``local.settings.json`` live)."""
        return self.script.parent

    @property
    def timer_functions(self) -> tuple[FunctionSpec, ...]:
        """Functions with a timer trigger."""
        return tuple(f for f in self.functions if isinstance(f.trigger, TimerTrigger))

    @property
    def queue_functions(self) -> tuple[FunctionSpec, ...]:
        """Functions with a queue trigger."""
        return tuple(f for f in self.functions if isinstance(f.trigger, QueueTrigger))


def normalize_queue_name(name: str, *, where: str) -> str:
    """Lower-case ``name`` and check it is a valid queue name (3-63 of a-z, 0-9, single '-').

    Raises:
        ConfigurationError: naming ``where``.
    """
    normalized = name.strip().lower()
    if not _QUEUE_NAME.match(normalized):
        raise ConfigurationError(
            f"the {where} {name!r} is not a valid queue name: 3-63 characters of letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
    return normalized


def index_functions(
    functions: Sequence[func.Function], environ: Mapping[str, str], *, script: Path
) -> IndexedApp:
    """Check and resolve every function the app declares.

    Functions with triggers this host does not run (HTTP and others) are skipped with a
    warning, so an app with an extra HTTP endpoint still runs its timers and queues.

    Raises:
        FunctionLoadError: naming the function and what does not fit.
        ConfigurationError: for an unknown ``%Setting%`` or an invalid schedule or queue name.
    """
    specs = []
    for function in functions:
        spec = _index_one(function, environ, script.parent)
        if spec is not None:
            specs.append(spec)
    return IndexedApp(script=script, functions=tuple(specs))


def _index_one(
    function: func.Function, environ: Mapping[str, str], directory: Path
) -> FunctionSpec | None:
    name = function.get_function_name() or function.get_user_function().__name__
    trigger_binding = function.get_trigger()
    if trigger_binding is None:
        raise FunctionLoadError(f"cannot load the {name} function: it has no trigger")
    trigger = _trigger(name, trigger_binding, environ)
    if trigger is None:
        logger.warning(
            "function %s has a %s trigger, which this local host does not run; skipped",
            name,
            trigger_binding.type,
        )
        return None
    outputs = _outputs(name, function.get_bindings(), trigger_binding, environ)
    if function.get_setting("retry_policy") is not None:
        logger.warning("function %s: retry policies are not emulated by this host", name)
    user_function = function.get_user_function()
    wants_context, trigger_input = _check_parameters(name, user_function, trigger, outputs)
    return FunctionSpec(
        name=name,
        user_function=user_function,
        trigger=trigger,
        trigger_input=trigger_input,
        outputs=outputs,
        wants_context=wants_context,
        is_async=inspect.iscoroutinefunction(user_function),
        directory=directory,
    )


def _trigger(
    name: str, binding: Any, environ: Mapping[str, str]
) -> TimerTrigger | QueueTrigger | None:
    if binding.type == "timerTrigger":
        where = f"schedule of function {name}"
        expression = resolve_setting_references(str(binding.schedule), environ, where=where)
        return TimerTrigger(
            arg_name=binding.name,
            schedule=NcrontabSchedule.parse(expression, where=where),
            run_on_startup=bool(binding.run_on_startup),
            use_monitor=binding.use_monitor,
        )
    if binding.type == "queueTrigger":
        where = f"queue name of function {name}"
        queue = resolve_setting_references(str(binding.queue_name), environ, where=where)
        return QueueTrigger(
            arg_name=binding.name,
            queue_name=normalize_queue_name(queue, where=where),
            connection=binding.connection or HOST_STORAGE,
        )
    return None


def _outputs(
    name: str, bindings: Sequence[Any], trigger: Any, environ: Mapping[str, str]
) -> tuple[QueueOutput, ...]:
    outputs = []
    for binding in bindings:
        if binding is trigger:
            continue
        if binding.type != "queue" or binding.direction != 1:  # BindingDirection.OUT
            raise FunctionLoadError(
                f"cannot load the {name} function: its {binding.type} binding "
                f"{binding.name!r} is not supported by this local host (queue outputs only)"
            )
        where = f"output queue name of function {name}"
        queue = resolve_setting_references(str(binding.queue_name), environ, where=where)
        outputs.append(
            QueueOutput(
                arg_name=binding.name,
                queue_name=normalize_queue_name(queue, where=where),
                connection=binding.connection or HOST_STORAGE,
            )
        )
    return tuple(outputs)


def _type_hints(name: str, user_function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(user_function)
    except Exception as exc:
        raise FunctionLoadError(
            f"cannot load the {name} function: its annotations cannot be resolved: {exc}"
        ) from None


def _is_out_annotation(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return annotation is func_abc.Out or (origin is not None and origin is func_abc.Out)


def _check_parameters(
    name: str,
    user_function: Callable[..., Any],
    trigger: TimerTrigger | QueueTrigger,
    outputs: tuple[QueueOutput, ...],
) -> tuple[bool, TriggerInput]:
    """Apply the worker's parameter rules; returns (wants_context, trigger_input)."""
    params = dict(inspect.signature(user_function).parameters)
    hints = _type_hints(name, user_function)
    bound = {trigger.arg_name} | {o.arg_name for o in outputs if o.arg_name != RETURN_BINDING}

    wants_context = "context" in params and "context" not in bound
    if wants_context:
        params.pop("context")
        annotation = hints.get("context")
        if annotation is not None and not (
            isinstance(annotation, type) and annotation.__name__ == "Context"
        ):
            raise FunctionLoadError(
                f"cannot load the {name} function: the 'context' parameter is expected to be "
                f"of type azure.functions.Context, got {annotation!r}"
            )
    undeclared = sorted(set(params) - bound)
    if undeclared:
        raise FunctionLoadError(
            f"cannot load the {name} function: parameters {undeclared} have no binding of "
            "that name (parameter names must equal the bindings' arg_name)"
        )
    unbound = sorted(bound - set(params))
    if unbound:
        raise FunctionLoadError(
            f"cannot load the {name} function: bindings {unbound} have no parameter of that "
            "name (parameter names must equal the bindings' arg_name)"
        )
    for output in outputs:
        if output.arg_name != RETURN_BINDING and output.arg_name in hints:
            _check_out_annotation(name, output.arg_name, hints[output.arg_name])
    return wants_context, _trigger_input(name, trigger, hints.get(trigger.arg_name))


def _check_out_annotation(name: str, arg_name: str, annotation: Any) -> None:
    if not _is_out_annotation(annotation):
        raise FunctionLoadError(
            f"cannot load the {name} function: binding {arg_name} is an output, but its "
            "annotation is not azure.functions.Out[...]"
        )
    args = typing.get_args(annotation)
    if len(args) != 1:
        raise FunctionLoadError(
            f"cannot load the {name} function: binding {arg_name} has the invalid Out "
            f"annotation {annotation!r} (expected e.g. func.Out[str])"
        )
    if not QueueMessageOutConverter.check_output_type_annotation(args[0]):
        raise FunctionLoadError(
            f"cannot load the {name} function: queue output {arg_name} cannot carry "
            f"{args[0]!r}: use str, bytes, func.QueueMessage or typing.List of str or "
            "func.QueueMessage (the worker's check does not accept the builtin list[...])"
        )


def _trigger_input(
    name: str, trigger: TimerTrigger | QueueTrigger, annotation: Any
) -> TriggerInput:
    if annotation is not None and _is_out_annotation(annotation):
        raise FunctionLoadError(
            f"cannot load the {name} function: trigger parameter {trigger.arg_name} is an "
            "input, but is annotated azure.functions.Out"
        )
    if annotation is None:
        return "object"
    if isinstance(trigger, QueueTrigger):
        if annotation is str:
            return "str"
        if annotation is bytes:
            return "bytes"
        if isinstance(annotation, type) and issubclass(annotation, func_abc.QueueMessage):
            return "object"
    elif isinstance(annotation, type) and issubclass(annotation, func_abc.TimerRequest):
        return "object"
    expected = (
        "func.QueueMessage, str or bytes"
        if isinstance(trigger, QueueTrigger)
        else ("func.TimerRequest")
    )
    raise FunctionLoadError(
        f"cannot load the {name} function: trigger parameter {trigger.arg_name} is annotated "
        f"{annotation!r}, expected {expected}"
    )
