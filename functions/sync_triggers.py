"""The sync's two triggers: a timer that schedules work, and the queue worker that does it.

Both are thin: they turn the trigger input into a typed value and hand it to
``shared.sync.service``. Failures propagate, so the queue's retry and poison handling apply
(a malformed job message raises InvalidMessageError and ends in ``sync-jobs-poison``).
"""

from __future__ import annotations

import azure.functions as func

from shared.jobs import SYNC_JOBS_QUEUE, parse_job
from shared.sync import service

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions is untyped here


@bp.function_name("schedule_sync")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_SCHEDULE%", run_on_startup=False)
async def schedule_sync(timer: func.TimerRequest) -> None:
    """Every tick: check each instance's identity and enqueue a job per idle stream."""
    await service.schedule_tick(past_due=timer.past_due)


@bp.function_name("run_sync_job")
@bp.queue_trigger(arg_name="message", queue_name=SYNC_JOBS_QUEUE, connection="AzureWebJobsStorage")
async def run_sync_job(message: func.QueueMessage) -> None:
    """Advance one stream by one page; enqueue its continuation if there is more."""
    job = parse_job(message.get_body())
    await service.run_job(job, dequeue_count=_dequeue_count(message))


def _dequeue_count(message: func.QueueMessage) -> int:
    """The delivery attempt (1 on first delivery), when the host provides it."""
    count = getattr(message, "dequeue_count", None)
    return int(count) if count else 1
