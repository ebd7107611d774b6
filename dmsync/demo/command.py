"""``dmsync demo``: the stages, in order, and the exit status.

1. start a private Azurite and both emulators (subprocesses);
2. seed the Dynamics organisation (control API);
3. run the real app, ``dmsync host`` on ``function_app.py``, with the app settings in its
   environment, and show the initial sync's progress until every entity is done;
4. change Dynamics through the Web API (creates, updates, deletes, filter flips, an owner change);
5. watch each change land in Marketo, with its latency; stop the host;
6. reconcile (the code of ``dmsync reconcile``) and print the report and the sync errors.

Exit status: 0 only when every change arrived, the host stopped cleanly and the reconciliation
holds; 1 otherwise (the reason is printed); 130 after Ctrl-C. Whatever happens, every process it
started is stopped before it exits.

Choices (the README's quick start repeats them):

* ``SYNC_SCHEDULE = */5 * * * * *`` (every 5 s) instead of the default minute, so a change shows
  in Marketo within seconds. A quiet tick costs two identity reads and one delta read per entity
  (11 Dataverse requests; about 660 per 5 minutes against the 6,000 limit) and no Marketo call.
* ``MARKETO_CALLS_PER_20S = 80``: below Marketo's 100 calls per 20 s per instance, which every
  integration of the instance shares; the rest stays free for others (here: the reconciliation).
  The initial sync of the full demo needs about 40 calls in all (300 records a call), so the
  share is never what it waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType

from dmsync.demo.arrivals import latency_summary, make_changes, watch
from dmsync.demo.changes import Change, Observation, build_changes, pick_subjects
from dmsync.demo.observe import MarketoView, SyncStateView
from dmsync.demo.output import DemoFailure, Narrator
from dmsync.demo.processes import (
    REPO_ROOT,
    SAMPLE_ORG_MAPPING,
    Services,
    app_settings,
    running_host,
    running_services,
)
from dmsync.demo.progress import wait_for_initial_sync
from dmsync.demo.scenario import (
    FILTERED_TABLES,
    SCALES,
    Scale,
    changes_budget,
    render_summary,
    seed,
    summarize,
)
from dmsync.reconcile_command import reconcile
from shared.dynamics.client import DynamicsClient
from shared.settings import DynamicsSettings, StorageSettings, load
from shared.state.store import StateStore
from shared.storage import StorageConnection
from shared.sync.config import SyncConfig, load_config

DEFAULT_SCHEDULE = "*/5 * * * * *"
DEFAULT_MARKETO_SHARE = 80
INSTANCE_ID = "demo"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``dmsync demo``."""
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="full",
        help="full: 1,500 accounts, 4,000 contacts, 2,500 leads, 600 opportunities (default); "
        "small: tens of records (tests)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        help=f"SYNC_SCHEDULE for the app (NCRONTAB, default {DEFAULT_SCHEDULE!r})",
    )
    parser.add_argument(
        "--marketo-calls-per-20s",
        type=int,
        choices=range(1, 101),
        metavar="N",
        default=DEFAULT_MARKETO_SHARE,
        help=f"MARKETO_CALLS_PER_20S for the app, 1-100 (default {DEFAULT_MARKETO_SHARE})",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the host's log here (default: a temporary folder, kept only on failure)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; see the module docstring for the exit status."""
    narrator = Narrator()
    _stop_on_signals(narrator)
    work_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="dmsync-demo-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    succeeded = False
    try:
        succeeded = Demo(args, SCALES[args.scale], narrator, work_dir).run()
    except DemoFailure as failure:
        narrator.say(f"DEMO FAILED: {failure}")
    except KeyboardInterrupt:
        narrator.say("interrupted: everything the demo started has been stopped")
        return 130
    finally:
        if succeeded and args.log_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not succeeded:
            narrator.say(f"logs kept in {work_dir}")
    return 0 if succeeded else 1


def _stop_on_signals(narrator: Narrator) -> None:
    """SIGINT or SIGTERM: unwind (stopping every child); a second one waits for that."""
    interrupted = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted:
            narrator.say("still stopping what the demo started; one moment")
            return
        interrupted = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


class Demo:
    """One run of the stages."""

    def __init__(
        self, args: argparse.Namespace, scale: Scale, narrator: Narrator, work_dir: Path
    ) -> None:
        self.args = args
        self.scale = scale
        self.say = narrator.say
        self.narrator = narrator
        self.work_dir = work_dir
        self.config: SyncConfig = load_config(SAMPLE_ORG_MAPPING)

    def run(self) -> bool:
        """All stages; True when everything arrived and the reconciliation holds."""
        self.say(
            f"dmsync demo ({self.scale.name} scale): the real app against a private Azurite "
            "and the Dynamics and Marketo emulators"
        )
        self.narrator.stage("1/6 start Azurite and both emulators")
        with running_services() as services:
            self._started(services)
            self.narrator.stage("2/6 seed the Dynamics organisation")
            table_rows = self._seed(services)
            settings = app_settings(
                services,
                schedule=self.args.schedule,
                marketo_calls_per_20s=self.args.marketo_calls_per_20s,
                instance_id=INSTANCE_ID,
            )
            marketo = MarketoView(services.marketo, self.config)
            try:
                self._sync_and_change(services, settings, table_rows, marketo)
            finally:
                marketo.close()
            self.narrator.stage("6/6 reconcile Dynamics with Marketo (as `dmsync reconcile`)")
            result = asyncio.run(reconcile(settings, instance_id=INSTANCE_ID))
            self.narrator.block(result.render())
            self.say("stopping the emulators and Azurite")
        self.say(
            "stopped everything the demo started (host, both emulators, Azurite); "
            f"the demo took {self.narrator.elapsed():.0f} s"
        )
        return result.holds

    def _started(self, services: Services) -> None:
        azurite = services.azurite
        self.say(
            f"Azurite on {azurite.host} (queues :{azurite.queue_port}, tables "
            f":{azurite.table_port})\n"
            f"Dynamics (Dataverse Web API) emulator {services.dynamics.base_url}\n"
            f"Marketo REST API emulator {services.marketo.base_url}"
        )

    def _seed(self, services: Services) -> dict[str, int]:
        rows = seed(services.dynamics, self.scale, self.args.seed)
        summaries = [summarize(t, services.dynamics.control.records(t)) for t in FILTERED_TABLES]
        self.say(f"seeded through the control API (seed {self.args.seed}):")
        self.narrator.block(render_summary(rows, summaries))
        return rows

    def _sync_and_change(
        self,
        services: Services,
        settings: dict[str, str],
        table_rows: dict[str, int],
        marketo: MarketoView,
    ) -> None:
        self.narrator.stage("3/6 run the app: dmsync host on function_app.py")
        faster = (
            " (every 5 s instead of every minute)" if self.args.schedule == DEFAULT_SCHEDULE else ""
        )
        self.say(
            f"app settings through the environment: SYNC_SCHEDULE={self.args.schedule!r}{faster}, "
            f"MARKETO_CALLS_PER_20S={self.args.marketo_calls_per_20s} (Marketo allows 100 per "
            "20 s per instance, shared by every integration), SYNC_INSTANCE_ID="
            f"{INSTANCE_ID}; Dynamics through azure-identity against the emulator's token "
            "endpoint (AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE)"
        )
        store = StateStore.from_connection(
            StorageConnection.from_settings(load(StorageSettings, settings))
        )
        state = SyncStateView(store, INSTANCE_ID)
        with running_host(settings, self.work_dir) as host:
            self.say(f"host started (pid {host.pid}); its log: {host.log_path}")

            def alive() -> bool:
                return host.exit_code() is None

            try:
                started = time.monotonic()
                wait_for_initial_sync(
                    self.config, state, marketo, table_rows, self.narrator,
                    timeout=self.scale.initial_sync_timeout, host_alive=alive,
                )  # fmt: skip
                self._initial_done(services, time.monotonic() - started)

                self.narrator.stage("4/6 change Dynamics through the Dataverse Web API")
                errors = store.errors.list(INSTANCE_ID)
                open_ids = {e.dynamics_id.lower() for e in errors if e.dynamics_id}
                subjects = pick_subjects(services.dynamics, state, open_ids)
                seen = Observation(marketo, state)
                changes = build_changes(subjects, seen)
                asyncio.run(self._make(settings, changes))

                self.narrator.stage("5/6 watch the changes arrive in Marketo")
                budget = changes_budget(self.scale, REPO_ROOT / "host.json")
                watch(changes, seen, self.narrator, timeout=budget, host_alive=alive)
                self.say(latency_summary(changes, self.args.schedule))
            except DemoFailure:
                exited = host.exit_code()
                if exited is not None:
                    self.say(f"the host exited with status {exited}")
                self.narrator.block("last lines of the host's log:\n" + host.log_tail())
                raise
            self.say("stopping the host")
            code = host.stop()
        if code != 0:
            raise DemoFailure(f"the host exited with status {code} (see {host.log_path})")
        self.say("host stopped cleanly (exit 0)")

    async def _make(self, settings: dict[str, str], changes: list[Change]) -> None:
        async with DynamicsClient(
            load(DynamicsSettings, settings), verify=settings["REQUESTS_CA_BUNDLE"]
        ) as client:
            await make_changes(client, changes, self.narrator)

    def _initial_done(self, services: Services, seconds: float) -> None:
        usage = services.marketo.control.usage()
        requests = services.dynamics.control.requests()
        self.say(
            f"initial sync done in {seconds:.0f} s (measured from host start). Marketo: "
            f"{usage.counted} API calls counted, at most {usage.max_calls_in_window} in one "
            f"20 s window (limit 100), {usage.max_concurrency} at once (limit 10). Dataverse: "
            f"{requests['total']} requests (limit 6,000 per 5 minutes)."
        )
