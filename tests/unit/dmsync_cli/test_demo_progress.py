"""The demo's progress bars, built from watermarks."""

from __future__ import annotations

from dmsync.demo.progress import bar, entity_progress, render, render_terminal
from shared.jobs import Direction
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, RunCounts, Watermark

STREAM = StreamId("demo", "contact", Direction.DYNAMICS_TO_MARKETO)


def test_bar_fills_in_proportion() -> None:
    """Half done is half full; unknown or zero totals show an empty bar."""
    assert bar(5, 10, width=10) == "[#####.....]"
    assert bar(10, 10, width=4) == "[####]"
    assert bar(3, None, width=4) == "[....]"
    assert bar(0, 0, width=4) == "[....]"


def test_entity_progress_follows_the_watermark() -> None:
    """Not started: waits for its dependencies; running: read so far; incremental: done."""
    waiting = entity_progress("contact", ("account",), None, 40, 0)
    assert (waiting.done, waiting.total, waiting.state) == (0, 40, "waiting for account")
    running = Watermark(STREAM, counts=RunCounts(read=10), run_open=True, total_expected=30)
    line = entity_progress("contact", ("account",), running, 40, 2)
    assert (line.done, line.total, line.state, line.complete) == (10, 30, "syncing", False)
    done = Watermark(STREAM, phase=Phase.INCREMENTAL, counts=RunCounts(read=45), total_expected=30)
    finished = entity_progress("contact", (), done, 40, 0)
    assert (finished.done, finished.total, finished.complete) == (30, 30, True)
    held = Watermark(STREAM, status="waiting for account")
    assert entity_progress("contact", ("account",), held, 40, 0).state == "waiting for account"


def test_render_shows_each_entity_and_marketo_counts() -> None:
    """One line per entity (with open errors when any), then what Marketo holds."""
    lines = [
        entity_progress("account", (), None, 4, 0),
        entity_progress("contact", ("account",), None, 8, 3),
    ]
    text = render(lines, {"companies": 2, "leads": 5})
    assert text.splitlines()[1].startswith("  contact ")
    assert "(3 open sync errors)" in text
    assert text.splitlines()[-1] == "  in Marketo now: 2 companies, 5 leads"


def test_on_a_terminal_the_bars_are_rich_progress_bars() -> None:
    """The same lines drawn by rich (escape codes, bar glyphs), the counts unchanged."""
    lines = [
        entity_progress("account", (), None, 4, 0),
        entity_progress("contact", ("account",), None, 8, 3),
    ]
    text = render_terminal(lines, {"companies": 2, "leads": 5})
    assert "\x1b[" in text
    assert "━" in text, "rich's bar glyph"
    assert "0/8" in text and "(3 open sync errors)" in text
    assert "in Marketo now: 2 companies, 5 leads" in text
