"""Thin triggers (blueprints). Each turns its input into a typed model and calls ``shared``."""

import azure.functions as func

from functions.sync_triggers import bp as sync_triggers

BLUEPRINTS: tuple[func.Blueprint, ...] = (sync_triggers,)
"""Every blueprint the app registers, in order."""
