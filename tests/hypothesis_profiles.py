"""Hypothesis profiles for the suite: no deadline anywhere, derandomized examples in CI.

Property tests never fail on wall-clock time (the machine is shared and loaded, and Hypothesis's
default 200 ms deadline turns a slow example into a red run). In CI (``CI=true``, as GitHub
Actions, Azure Pipelines and most runners set it) the examples are derandomized, so a red run is
reproducible and a green run is the same run as the last one. A developer's run keeps
Hypothesis's random search, which is how new counterexamples are found. ``HYPOTHESIS_PROFILE``
picks a profile by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import settings

DEV = "dev"
CI = "ci"


def register() -> None:
    """Register both profiles (idempotent)."""
    settings.register_profile(DEV, deadline=None)
    settings.register_profile(CI, deadline=None, derandomize=True, print_blob=True)


def chosen(environ: Mapping[str, str]) -> str:
    """The profile for this environment: ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set
    to a true value, else ``dev``."""
    explicit = environ.get("HYPOTHESIS_PROFILE")
    if explicit:
        return explicit
    return CI if environ.get("CI", "").strip().lower() in ("true", "1", "yes") else DEV


def load(environ: Mapping[str, str]) -> str:
    """Register the profiles and load the one ``environ`` asks for; returns its name."""
    register()
    name = chosen(environ)
    settings.load_profile(name)
    return name
