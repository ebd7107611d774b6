"""The at-a-glance status table: one row per entity and direction.

On a terminal it is drawn with ``rich`` (a table per instance, colour for what needs a look);
anywhere else (a pipe, a file, CI) it is plain text in aligned columns, no escape codes. The
rows come from :func:`shared.state.glance.glance`; ``dmsync status --json`` prints the same.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from dmsync.state_cli import format_age, format_time, render_table, shorten
from shared.state.glance import StreamGlance
from shared.state.status import InstanceReport

HEADERS = (
    "ENTITY",
    "DIR",
    "PHASE",
    "LAST HOUR",
    "BACKLOG",
    "BEHIND",
    "CATCH-UP",
    "ERRORS",
    "LAST RUN",
    "NOTE",
)
_ATTENTION = {"quota used up", "waiting"}


def cells(row: StreamGlance) -> list[str]:
    """The text of one row."""
    backlog = "?" if row.backlog is None else str(row.backlog)
    if row.pending:
        backlog += f" ({row.pending} links)"
    if row.catch_up_seconds == 0:
        catch_up = "caught up"
    elif row.catch_up_seconds is None:
        catch_up = "?"
    else:
        catch_up = "~" + format_age(row.catch_up_seconds)
    return [
        row.entity,
        row.direction,
        row.phase,
        str(row.last_hour),
        backlog,
        format_age(row.behind_seconds),
        catch_up,
        str(row.errors),
        format_time(row.last_run_at),
        shorten(row.note, 48),
    ]


def title(report: InstanceReport) -> str:
    """``instance prod (active; integrated with Dynamics)``."""
    instance = report.instance
    if instance is None:
        return f"instance {report.instance_id} (not registered)"
    integrated = (
        "integrated with Dynamics" if instance.integrated_with_dynamics else "not integrated"
    )
    reason = f": {instance.status_reason}" if instance.status_reason else ""
    return f"instance {report.instance_id} ({instance.status.value}{reason}; {integrated})"


def render_plain(sections: Sequence[tuple[InstanceReport, list[StreamGlance]]]) -> str:
    """Plain text: a title line and aligned columns per instance."""
    blocks = []
    for report, rows in sections:
        if not rows:
            blocks.append(f"{title(report)}\n  no streams have run yet")
            continue
        blocks.append(title(report) + "\n" + render_table(HEADERS, [cells(r) for r in rows]))
    return "\n\n".join(blocks)


def render_rich(
    sections: Sequence[tuple[InstanceReport, list[StreamGlance]]], out: TextIO, now: datetime
) -> None:
    """A rich table per instance, written to ``out`` (a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, force_terminal=True, highlight=False)
    for report, rows in sections:
        if not rows:
            console.print(f"[bold]{title(report)}[/bold]\n  no streams have run yet")
            continue
        table = Table(title=title(report), title_justify="left", caption=f"at {format_time(now)}")
        for header in HEADERS:
            numeric = header in {"LAST HOUR", "BACKLOG", "ERRORS"}
            table.add_column(
                header, justify="right" if numeric else "left", no_wrap=header != "NOTE"
            )
        for row in rows:
            text = cells(row)
            style = ""
            if row.errors:
                style = "red"
            elif row.phase in _ATTENTION:
                style = "yellow"
            elif row.phase == "up to date":
                style = "green"
            table.add_row(*text, style=style or None)
        console.print(table)


def show(
    sections: Sequence[tuple[InstanceReport, list[StreamGlance]]],
    now: datetime,
    out: TextIO | None = None,
) -> None:
    """Rich on a terminal, plain text otherwise."""
    stream = out or sys.stdout
    if stream.isatty():
        render_rich(sections, stream, now)
    else:
        print(render_plain(sections), file=stream)
