"""The suite's Hypothesis settings: no property test can fail on time, CI runs are repeatable."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import settings

from tests import hypothesis_profiles

TESTS = Path(__file__).resolve().parents[2]


def test_the_loaded_profile_has_no_deadline() -> None:
    """What every @given in this run inherits (conftest loads it before any test module)."""
    assert settings.default.deadline is None
    assert settings.get_profile(hypothesis_profiles.DEV).deadline is None


def test_ci_runs_are_derandomized_and_have_no_deadline() -> None:
    profile = settings.get_profile(hypothesis_profiles.CI)
    assert profile.derandomize is True
    assert profile.deadline is None


def test_the_profile_follows_the_ci_variable() -> None:
    assert hypothesis_profiles.chosen({"CI": "true"}) == hypothesis_profiles.CI
    assert hypothesis_profiles.chosen({"CI": "1"}) == hypothesis_profiles.CI
    assert hypothesis_profiles.chosen({}) == hypothesis_profiles.DEV
    assert hypothesis_profiles.chosen({"CI": "false"}) == hypothesis_profiles.DEV
    assert hypothesis_profiles.chosen({"CI": "true", "HYPOTHESIS_PROFILE": "dev"}) == "dev"


def test_no_test_sets_a_deadline_of_its_own() -> None:
    """A per-test ``@settings(deadline=...)`` would override the profile; only None is allowed."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "settings"):
                continue
            for keyword in node.keywords:
                if keyword.arg == "deadline" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is None
                ):
                    offenders.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert offenders == []
