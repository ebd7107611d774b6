"""App settings for the local host: ``local.settings.json``, ``%Setting%`` references, host id.

``func start`` copies the ``Values`` of ``local.settings.json`` into the environment of the host
and the worker, except where a variable of the same name is already set (the real environment
wins) [reference §5, "local.settings.json"]. Binding expressions such as ``schedule="%SCHEDULE%"``
or ``queue_name="%JOBS_QUEUE%"`` are resolved from those app settings when the functions are
indexed; an unknown name stops the host with an error naming it [reference §1].
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from shared.errors import ConfigurationError

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json`` file (empty if the file does not exist).

    JSON numbers and booleans are taken as their JSON text (``5``, ``true``); values are never
    echoed in errors because they may be secrets.

    Raises:
        ConfigurationError: if the file is not valid JSON, is encrypted, or ``Values`` is not an
            object of scalars.
    """
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path} is not a readable JSON file: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path} must hold a JSON object with a 'Values' object")
    if document.get("IsEncrypted") is True:
        raise ConfigurationError(
            f"{path} is encrypted (IsEncrypted: true); this host reads plain values only: "
            "decrypt it with `func settings decrypt` or write it anew"
        )
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise ConfigurationError(f"{path}: 'Values' must be a JSON object of setting names")
    settings: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            settings[name] = value
        elif isinstance(value, bool | int | float):
            settings[name] = json.dumps(value)
        else:
            raise ConfigurationError(
                f"{path}: the value of {name!r} must be a string, number or boolean"
            )
    return settings


def apply_local_settings(
    values: Mapping[str, str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Copy ``values`` into ``environ`` (default ``os.environ``) where not already set.

    Returns:
        The names that were copied (the ones the environment did not already have).
    """
    target = os.environ if environ is None else environ
    applied = []
    for name, value in values.items():
        if name not in target:
            target[name] = value
            applied.append(name)
    return applied


def resolve_setting_references(text: str, environ: Mapping[str, str], *, where: str) -> str:
    """Replace every ``%Name%`` in ``text`` with the app setting ``Name``.

    Args:
        text: a schedule, queue name or other binding expression.
        environ: the app settings (the environment, after ``local.settings.json``).
        where: what the text belongs to, for the error message (e.g. ``"schedule of tick"``).

    Raises:
        ConfigurationError: naming the first setting that is not defined.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigurationError(
                f"the {where} refers to app setting %{name}%, which is not set "
                "(add it to the environment or to local.settings.json Values)"
            )
        return environ[name]

    return _SETTING_REFERENCE.sub(substitute, text)


def default_host_id(app_directory: Path, environ: Mapping[str, str]) -> str:
    """The host id that scopes timer status rows, as the real host derives one locally.

    ``AzureFunctionsWebHost__hostid`` wins when set; otherwise the machine name plus a stable
    hash of the app folder, lower case and at most 32 characters (the real host's limit), so two
    apps on one machine do not share timer state.
    """
    explicit = environ.get("AzureFunctionsWebHost__hostid", "").strip()
    if explicit:
        return explicit.lower()[:32]
    digest = hashlib.sha256(str(app_directory.resolve()).encode()).hexdigest()[:8]
    machine = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().lower())
    return f"{machine[:23]}-{digest}"
