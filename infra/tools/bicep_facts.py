"""Parse every Bicep file under infra/ (pycep-parser) and azure.yaml; print the result as JSON.

Runs in the infra tool venv (``.venv-infra``, where pycep-parser and PyYAML live), so the app's
venv never needs them: tests/infra runs this once and asserts on the JSON.

Usage: ``.venv-infra/bin/python infra/tools/bicep_facts.py REPO_ROOT``

Output: ``{"bicep": {"<path relative to repo>": {"ok": true, "tree": {...}} | {"ok": false,
"error": "..."}}, "azure_yaml": {...}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pycep import BicepParser


def parse_bicep(parser: BicepParser, path: Path) -> dict[str, Any]:
    """One file's pycep tree, or the parse error (pycep raises on any syntax it rejects)."""
    try:
        return {"ok": True, "tree": parser.parse(file_path=path)}
    except Exception as exc:  # any parse failure is reported, not raised: the test names the file
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:2000]}"}


def main(argv: list[str]) -> int:
    """Print the facts for the repository at ``argv[1]``."""
    if len(argv) != 2:
        sys.stderr.write("usage: bicep_facts.py REPO_ROOT\n")
        return 2
    root = Path(argv[1]).resolve()
    parser = BicepParser()
    bicep = {
        str(path.relative_to(root)): parse_bicep(parser, path)
        for path in sorted((root / "infra").rglob("*.bicep"))
        if "node_modules" not in path.parts
    }
    azure_yaml = yaml.safe_load((root / "azure.yaml").read_text(encoding="utf-8"))
    json.dump({"bicep": bicep, "azure_yaml": azure_yaml}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
