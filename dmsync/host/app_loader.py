"""Load ``function_app.py`` the way the Python worker does.

The worker imports the entry module (``function_app.py`` in the app folder, or the file named by
the app setting ``PYTHON_SCRIPT_FILE_NAME``) with the app folder on ``sys.path``, looks through
the module's attributes for ``azure.functions.FunctionRegister`` instances (a ``FunctionApp``):
none, or more than one, is an error. It then calls ``get_functions()`` exactly once, because a
second call on the same app raises "does not have a unique function name" [reference §1].
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import azure.functions as func

from dmsync.host.function_index import FunctionLoadError, IndexedApp, index_functions
from shared.errors import ConfigurationError

logger = logging.getLogger("dmsync.host")

DEFAULT_SCRIPT_FILE = "function_app.py"
SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"


def resolve_script_path(app: Path | None, environ: Mapping[str, str]) -> Path:
    """The entry script: ``app`` if it is a file, else ``<folder>/<PYTHON_SCRIPT_FILE_NAME>``.

    Args:
        app: a script file, an app folder, or ``None`` for the current directory.
        environ: the app settings (``PYTHON_SCRIPT_FILE_NAME`` picks the file in a folder).

    Raises:
        ConfigurationError: if the script does not exist.
    """
    base = Path.cwd() if app is None else app
    file_name = environ.get(SCRIPT_FILE_SETTING) or DEFAULT_SCRIPT_FILE
    script = base if base.is_file() else base / file_name
    if not script.is_file():
        raise ConfigurationError(
            f"no Functions entry script at {script} (pass --app, or set {SCRIPT_FILE_SETTING})"
        )
    return script.resolve()


def import_script(script: Path) -> ModuleType:
    """Import ``script`` as a top-level module named after the file, its folder on ``sys.path``.

    A module of the same name imported earlier is replaced, so one process can load several
    apps one after another (the tests do).

    Raises:
        ConfigurationError: if the import fails; the traceback is logged.
    """
    folder = str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = script.stem
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{script} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        logger.error("importing %s failed:\n%s", script, traceback.format_exc())
        raise ConfigurationError(
            f"importing {script.name} failed: {type(exc).__name__}: {exc}"
        ) from None
    return module


def find_function_register(module: ModuleType) -> func.FunctionRegister:
    """The single ``FunctionRegister`` among the module's attributes.

    Raises:
        FunctionLoadError: when there is none, or more than one (as the worker refuses both).
    """
    found = [
        (name, value)
        for name, value in vars(module).items()
        if isinstance(value, func.FunctionRegister)
    ]
    if not found:
        raise FunctionLoadError(
            f"{module.__name__} defines no azure.functions.FunctionApp at module level "
            "(the worker indexes exactly one top-level FunctionApp)"
        )
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise FunctionLoadError(
            f"{module.__name__} defines more than one top-level function app ({names}); "
            "the worker accepts exactly one"
        )
    return found[0][1]


def load_app(app: Path | None, environ: Mapping[str, str]) -> IndexedApp:
    """Locate, import and index the app: what the worker does before the host starts triggers.

    Args:
        app: script file or app folder (``None``: the current directory).
        environ: the app settings, ``local.settings.json`` already applied.

    Raises:
        ConfigurationError: (including :class:`FunctionLoadError`) naming what is wrong.
    """
    script = resolve_script_path(app, environ)
    module = import_script(script)
    register = find_function_register(module)
    try:
        functions = register.get_functions()
    except ValueError as exc:
        raise FunctionLoadError(f"indexing {script.name} failed: {exc}") from None
    return index_functions(functions, environ, script=script)
