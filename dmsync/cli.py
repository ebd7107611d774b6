"""``dmsync``: the project's command-line tool.

Each sub-command lives in its own module exposing ``configure(parser)`` (cheap: argparse only)
and ``run(args) -> int`` (may import heavy things). This file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shared.errors import DmsyncError

COMMANDS: dict[str, tuple[str, str]] = {
    "azurite": ("dmsync.azurite_command", "run a private Azurite and print its connection string"),
    "emulator": ("dmsync.emulator_command", "run the Dynamics or Marketo emulator"),
    "host": ("dmsync.host.command", "run function_app.py locally like the Azure Functions host"),
    "instance": ("dmsync.instance_command", "list, show, add or copy integration instances"),
    "errors": ("dmsync.errors_command", "list, retry now or export the sync errors"),
    "status": (
        "dmsync.status_command",
        "per entity at a glance: phase, last hour, backlog, catch-up, errors",
    ),
    "validate": (
        "dmsync.validate_command",
        "check settings, access and the mapping; exit 0 if all ✔",
    ),
    "resync": ("dmsync.resync_command", "full copy of some entities, done by the app; --wait"),
    "backfill": ("dmsync.backfill_command", "send one field of every mapped record (Quick Sync)"),
    "reconcile": ("dmsync.reconcile_command", "compare Dynamics with Marketo; exit 0 if it holds"),
    "demo": ("dmsync.demo.command", "seed the emulators, run the real host, show the sync work"),
}
"""Sub-command name → (module, one-line help)."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command configured."""
    parser = argparse.ArgumentParser(prog="dmsync", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(_module=module)
    return parser


def with_default_action(argv: Sequence[str]) -> list[str]:
    """``dmsync errors INSTANCE`` → ``dmsync errors list INSTANCE``: a command whose module
    names ``ACTIONS`` and a ``DEFAULT_ACTION`` gets that action when none is given."""
    words = list(argv)
    if not words or words[0] not in COMMANDS:
        return words
    module = importlib.import_module(COMMANDS[words[0]][0])
    default = getattr(module, "DEFAULT_ACTION", None)
    actions = getattr(module, "ACTIONS", ())
    rest = words[1:]
    if default is None or (rest and (rest[0] in actions or rest[0] in ("-h", "--help"))):
        return words
    return [words[0], default, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; errors of ours print as one clear line."""
    args = build_parser().parse_args(with_default_action(sys.argv[1:] if argv is None else argv))
    try:
        result: int = args._module.run(args)
    except DmsyncError as exc:
        print(f"dmsync {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
