"""``dmsync instance list|show|add|copy|pause|resume|relink``: the integration instances.

``pause``/``resume`` stop and restart the sync of an instance (an operator's choice).
``relink`` accepts the Dynamics environment the app's settings now reach as the instance's own
(after a deliberate sandbox refresh the sync suspended itself for) and resumes it; it needs the
app's full settings, as the app does.

``copy SOURCE TARGET`` applies the instance-copy rule stored in Table Storage: a source that is
integrated with Microsoft Dynamics is refused (exit 2, with Marketo's wording); otherwise the
target gets the source's configuration and nothing else, and starts paused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from dmsync.state_cli import (
    add_store_options,
    format_time,
    open_store,
    print_json,
    render_table,
    shorten,
)
from shared.errors import ConfigurationError
from shared.state.instances import (
    DynamicsOrganization,
    Instance,
    InstanceStatus,
    MarketoInstance,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Sub-commands ``list``, ``show``, ``add`` and ``copy``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every instance")
    show = actions.add_parser("show", help="one instance in full")
    show.add_argument("instance_id", metavar="INSTANCE")

    add = actions.add_parser("add", help="register an instance")
    add.add_argument("instance_id", metavar="INSTANCE")
    add.add_argument("--dynamics-url", help="the Dataverse environment URL")
    add.add_argument("--dynamics-org-id", help="the Dataverse organization id")
    add.add_argument("--dynamics-env-id", help="the Power Platform environment id")
    add.add_argument("--marketo-base-url", help="the Marketo REST base URL")
    add.add_argument("--munchkin-id", help="the Marketo Munchkin id")
    add.add_argument("--config", type=Path, help="a JSON file: entities, field mapping, schedule")
    add.add_argument(
        "--integrated",
        action="store_true",
        help="the Marketo instance is integrated with Microsoft Dynamics",
    )
    add.add_argument(
        "--status",
        choices=[s.value for s in InstanceStatus],
        default=InstanceStatus.ACTIVE.value,
        help="initial status (default active)",
    )

    copy = actions.add_parser("copy", help="copy an instance's configuration to a new instance")
    copy.add_argument("source", metavar="SOURCE")
    copy.add_argument("target", metavar="TARGET")
    copy.add_argument("--marketo-base-url", help="the target's Marketo REST base URL")
    copy.add_argument("--munchkin-id", help="the target's Marketo Munchkin id")
    pause = actions.add_parser("pause", help="stop syncing an instance")
    pause.add_argument("instance_id", metavar="INSTANCE")
    pause.add_argument("--reason", default="paused by an operator", help="shown in status")
    resume = actions.add_parser("resume", help="sync a paused instance again")
    resume.add_argument("instance_id", metavar="INSTANCE")
    actions.add_parser(
        "relink",
        help="accept the Dynamics environment the settings reach now, and resume "
        "(after a sandbox refresh); reads every app setting",
    )
    for sub in (listing, show, add, copy, pause, resume):
        add_store_options(sub)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    if args.action == "relink":
        return asyncio.run(_relink())
    store = open_store(args)
    if args.action in ("pause", "resume"):
        current = store.instances.require(args.instance_id)
        if args.action == "resume" and current.status is InstanceStatus.SUSPENDED:
            raise ConfigurationError(
                f"instance {args.instance_id} was suspended by the sync itself "
                f"({current.status_reason}); check the cause, then use `dmsync instance relink`"
            )
        status = InstanceStatus.PAUSED if args.action == "pause" else InstanceStatus.ACTIVE
        reason = args.reason if args.action == "pause" else "resumed by an operator"
        _print_one(store.instances.set_status(args.instance_id, status, reason), as_json=args.json)
        return 0
    if args.action == "list":
        instances = store.instances.list()
        if args.json:
            print_json([_as_json(i) for i in instances])
        elif instances:
            print(render_table(_HEADERS, [_row(i) for i in instances]))
        else:
            print("no instances")
        return 0
    if args.action == "show":
        _print_one(store.instances.require(args.instance_id), as_json=args.json)
        return 0
    if args.action == "add":
        _print_one(store.instances.create(_from_args(args)), as_json=args.json)
        return 0
    marketo = MarketoInstance(args.marketo_base_url, args.munchkin_id)
    created = store.copy_instance(args.source, args.target, marketo=marketo)
    if not args.json:
        print(
            f"copied {args.source} to {args.target} "
            f"(configuration only; status {created.status.value})"
        )
    _print_one(created, as_json=args.json)
    return 0


async def _relink() -> int:
    from shared.sync.service import build_runtime

    runtime = await build_runtime()
    try:
        instance = await runtime.scheduler.relink()
    finally:
        await runtime.aclose()
    print(
        f"instance {instance.instance_id} re-linked to Dynamics organization "
        f"{instance.dynamics.organization_id}; status {instance.status.value}"
    )
    return 0


_HEADERS = ("INSTANCE", "STATUS", "DYNAMICS", "MARKETO", "INTEGRATED", "REASON")


def _row(instance: Instance) -> list[str]:
    return [
        instance.instance_id,
        instance.status.value,
        instance.dynamics.url or "-",
        instance.marketo.munchkin_id or instance.marketo.base_url or "-",
        "yes" if instance.integrated_with_dynamics else "no",
        shorten(instance.status_reason, 50),
    ]


def _as_json(instance: Instance) -> dict[str, Any]:
    return {
        "instance": instance.instance_id,
        "status": instance.status.value,
        "status_reason": instance.status_reason,
        "status_changed_at": format_time(instance.status_changed_at),
        "integrated_with_dynamics": instance.integrated_with_dynamics,
        "dynamics": {
            "url": instance.dynamics.url,
            "organization_id": instance.dynamics.organization_id,
            "environment_id": instance.dynamics.environment_id,
        },
        "marketo": {
            "base_url": instance.marketo.base_url,
            "munchkin_id": instance.marketo.munchkin_id,
        },
        "config": instance.config,
        "copied_from": instance.copied_from,
        "created_at": format_time(instance.created_at),
        "updated_at": format_time(instance.updated_at),
    }


def _print_one(instance: Instance, *, as_json: bool) -> None:
    payload = _as_json(instance)
    if as_json:
        print_json(payload)
        return
    for key in ("instance", "status", "status_reason", "status_changed_at"):
        print(f"{key}: {payload[key] or '-'}")
    print(f"integrated_with_dynamics: {'yes' if instance.integrated_with_dynamics else 'no'}")
    print(f"dynamics: {instance.dynamics.url or '-'}")
    print(f"  organization_id: {instance.dynamics.organization_id or '-'}")
    print(f"  environment_id: {instance.dynamics.environment_id or '-'}")
    print(f"marketo: {instance.marketo.base_url or '-'}")
    print(f"  munchkin_id: {instance.marketo.munchkin_id or '-'}")
    print(f"copied_from: {instance.copied_from or '-'}")
    print("config: " + json.dumps(instance.config, sort_keys=True))


def _from_args(args: argparse.Namespace) -> Instance:
    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"--config {args.config}: not a readable JSON file ({exc})"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"--config {args.config}: must hold a JSON object")
        config = loaded
    return Instance(
        instance_id=args.instance_id,
        dynamics=DynamicsOrganization(
            args.dynamics_url, args.dynamics_org_id, args.dynamics_env_id
        ),
        marketo=MarketoInstance(args.marketo_base_url, args.munchkin_id),
        config=config,
        integrated_with_dynamics=args.integrated,
        status=InstanceStatus(args.status),
    )
