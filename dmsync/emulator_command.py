"""``dmsync emulator dynamics|marketo``: start an emulator and serve until SIGTERM/SIGINT.

Each emulator package provides a module ``emulators.<name>.cli`` with ``configure(parser)`` and
``run(args) -> int``; ``run`` prints exactly one line ``listening on <base url>`` once it serves.
"""

from __future__ import annotations

import argparse
import importlib

EMULATORS: dict[str, str] = {
    "dynamics": "emulators.dynamics.cli",
    "marketo": "emulators.marketo.cli",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """One sub-command per emulator, each with the options its module declares."""
    subparsers = parser.add_subparsers(dest="emulator", required=True, metavar="NAME")
    for name, module_name in EMULATORS.items():
        sub = subparsers.add_parser(name, help=f"the {name} emulator")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:  # not built yet in this checkout
            continue
        module.configure(sub)
        sub.set_defaults(_emulator_module=module)


def run(args: argparse.Namespace) -> int:
    """Hand over to the chosen emulator's own ``run``."""
    module = getattr(args, "_emulator_module", None)
    if module is None:
        raise SystemExit(f"dmsync emulator: the {args.emulator} emulator is not available")
    result: int = module.run(args)
    return result
