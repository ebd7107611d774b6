"""Progress of the initial sync, per entity, as bars: plain text when the output is not a
terminal (no cursor control: CI-safe), ``rich`` progress bars on a terminal.

Done and total come from each stream's watermark, as ``dmsync status`` shows them: records read
and committed so far, and the row count Dataverse reported when the stream started. A stream
that has not started yet shows the table's row count from the seed. The sync commits a page at a
time (up to 5,000 rows), so a bar moves in page-sized steps; the line under the bars counts what
has reached Marketo so far, which moves with every write.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dmsync.demo.observe import MarketoView, SyncStateView
from dmsync.demo.output import DemoFailure, Narrator
from shared.state.watermarks import Phase, Watermark
from shared.sync.config import SyncConfig

BAR_WIDTH = 24
POLL_SECONDS = 1.0
MIN_PRINT_SECONDS = 2.0
"""A changed picture is printed at most this often."""
HEARTBEAT_SECONDS = 15.0
"""An unchanged picture is printed again after this long, so a log shows the demo is alive."""


@dataclass(frozen=True)
class EntityProgress:
    """One entity's line."""

    entity: str
    done: int
    total: int | None
    state: str
    open_errors: int

    @property
    def complete(self) -> bool:
        """The initial sync of this entity is over."""
        return self.state == "done"


def entity_progress(
    entity: str,
    depends_on: tuple[str, ...],
    watermark: Watermark | None,
    table_rows: int | None,
    open_errors: int,
) -> EntityProgress:
    """The line for one entity, from its watermark (``None``: not started)."""
    if watermark is None:
        state = "waiting for " + ", ".join(depends_on) if depends_on else "queued"
        return EntityProgress(entity, 0, table_rows, state, open_errors)
    total = watermark.total_expected if watermark.total_expected is not None else table_rows
    if watermark.phase is Phase.INCREMENTAL:
        done = total if total is not None else watermark.counts.read
        return EntityProgress(entity, done, total, "done", open_errors)
    done = min(watermark.counts.read, total) if total is not None else watermark.counts.read
    if watermark.run_open:
        state = "syncing"
    elif watermark.status.startswith("waiting"):
        state = watermark.status
    else:
        state = "queued"
    return EntityProgress(entity, done, total, state, open_errors)


def bar(done: int, total: int | None, width: int = BAR_WIDTH) -> str:
    """``[#######.................]``; all dots while the total is unknown or 0."""
    filled = min(width, round(width * done / total)) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render(lines: list[EntityProgress], in_marketo: Mapping[str, int]) -> str:
    """The picture: a bar per entity, then what Marketo holds so far."""
    name_width = max(len(line.entity) for line in lines)
    rows = []
    for line in lines:
        count = f"{line.done}/{line.total if line.total is not None else '?'}"
        errors = f"  ({line.open_errors} open sync errors)" if line.open_errors else ""
        rows.append(
            f"  {line.entity:<{name_width}} {bar(line.done, line.total)} {count:>11}  "
            f"{line.state}{errors}"
        )
    held = ", ".join(f"{count} {path}" for path, count in in_marketo.items())
    rows.append(f"  in Marketo now: {held}")
    return "\n".join(rows)


def render_terminal(lines: list[EntityProgress], in_marketo: Mapping[str, int]) -> str:
    """The same picture for a terminal: ``rich`` progress bars, as ANSI text."""
    from rich.console import Console
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    for _ in range(4):
        grid.add_column()
    for line in lines:
        count = f"{line.done}/{line.total if line.total is not None else '?'}"
        errors = f" ({line.open_errors} open sync errors)" if line.open_errors else ""
        progress = ProgressBar(total=line.total or None, completed=line.done, width=BAR_WIDTH)
        style = "green" if line.complete else ""
        grid.add_row(f"  {line.entity}", progress, count, f"[{style}]{line.state}[/]{errors}"
                     if style else line.state + errors)  # fmt: skip
    held = ", ".join(f"{count} {path}" for path, count in in_marketo.items())
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, highlight=False)
    console.print(grid)
    console.print(f"  in Marketo now: {held}")
    return out.getvalue().rstrip("\n")


def snapshot(
    config: SyncConfig,
    state: SyncStateView,
    table_rows: Mapping[str, int],
) -> list[EntityProgress]:
    """Every entity's line, in dependency order."""
    marks = state.watermarks()
    errors = state.open_errors()
    return [
        entity_progress(
            entity,
            config.entity[entity].depends_on,
            marks.get(entity),
            table_rows.get(config.entity[entity].table),
            errors.get(entity, 0),
        )
        for entity in config.order
    ]


def wait_for_initial_sync(
    config: SyncConfig,
    state: SyncStateView,
    marketo: MarketoView,
    table_rows: Mapping[str, int],
    narrator: Narrator,
    *,
    timeout: float,
    host_alive: Callable[[], bool],
) -> list[EntityProgress]:
    """Print progress until every entity finished its initial sync.

    Raises:
        DemoFailure: the host stopped, or the sync did not finish within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    printed, printed_at = "", 0.0
    while True:
        lines = snapshot(config, state, table_rows)
        drawn = render_terminal if narrator.stream.isatty() else render
        picture = drawn(lines, marketo.totals())
        now = time.monotonic()
        done = all(line.complete for line in lines)
        changed = picture != printed and now - printed_at >= MIN_PRINT_SECONDS
        if done or changed or now - printed_at >= HEARTBEAT_SECONDS:
            narrator.say("initial sync\n" + picture)
            printed, printed_at = picture, now
        if done:
            return lines
        if not host_alive():
            raise DemoFailure("the host stopped during the initial sync")
        if now > deadline:
            raise DemoFailure(f"the initial sync did not finish within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
