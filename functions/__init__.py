"""Thin triggers (blueprints). Each turns its input into a typed model and calls ``shared``."""

import azure.functions as func

BLUEPRINTS: tuple[func.Blueprint, ...] = ()
"""Every blueprint the app registers, in order."""
