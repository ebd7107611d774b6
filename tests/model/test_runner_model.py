"""A model-based test of the job runner: random schedules over in-memory sides.

Each schedule interleaves what Dynamics users do (create, change, delete accounts and their
contacts), scheduler ticks, deliveries of queued jobs in any order (each with one fault: a
storage, Dataverse or Marketo call that fails before or after it takes effect, or a worker
killed at that call, leaving its lease behind), duplicate deliveries, lost messages, the clock
moving (leases lapse, quiet runs get nudged, retries come due) and delta tokens expiring.

Then the system runs without faults until it is quiet, and the two sides are compared
(:meth:`tests.model.world.World.problems`): nothing lost, nothing doubled, every delete marked,
every mapping pointing at the record Marketo has. Everything real runs: the job runner, the
D→M pipeline, the scheduler and the state store with its ETag, lease and watermark rules; only
the outside systems are in memory (:mod:`tests.fakes`).

``make test`` runs :data:`SCHEDULES` schedules of :class:`RunnerModel` and
:data:`FROZEN_SCHEDULES` of :class:`FrozenWorkerModel`; ``MODEL_SCHEDULES=5000`` (and
``MODEL_FROZEN_SCHEDULES``) explore further, ``--hypothesis-show-statistics`` shows which faults
fired where. Gaps the model found are reproduced in :mod:`tests.model.test_known_gaps`.
"""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.fakes.faults import Fault
from tests.fakes.queue import Message
from tests.model.world import ACCOUNT, CONTACT, LINK_COLUMN, World

SCHEDULES = int(os.environ.get("MODEL_SCHEDULES", "600"))
"""Schedules of the main model per ``make test`` run (the issue asks for at least 500)."""
FROZEN_SCHEDULES = int(os.environ.get("MODEL_FROZEN_SCHEDULES", "150"))
"""Schedules of the frozen-worker model (on top of :data:`SCHEDULES`)."""

KINDS = st.sampled_from(["raise_before", "raise_after", "kill_before", "kill_after"])
ANY_CALL = st.builds(Fault, KINDS, st.integers(min_value=0, max_value=22))
"""A fault at any call of the job (a page job makes 8 to 22)."""
KEY_STEP = st.builds(
    Fault,
    KINDS,
    st.integers(min_value=0, max_value=1),
    st.sampled_from(
        [
            "marketo.write",
            "marketo.write",
            "table.submit_transaction",
            "table.update_entity(modelWatermarks)",
            "dynamics.read",
        ]
    ),
)
"""A fault at one of the steps that matter most: the Marketo write (twice as likely), the
mapping and error writes (transactions), the watermark commit, the Dataverse read."""
CONTINUATION = st.builds(
    Fault, st.sampled_from(["kill_before", "kill_after"]), st.just(0), st.just("queue.enqueue")
)
"""A worker dying just before or after sending the continuation (a failed send is retried by
the runner after a real 0.2 s pause, so that is left to the ANY_CALL faults)."""
FAULTS = st.one_of(st.none(), st.none(), ANY_CALL, KEY_STEP, KEY_STEP, CONTINUATION)
PICK = st.integers(min_value=0, max_value=1000)
MAX_FROZEN = 2
CHANGES = st.sampled_from(
    [
        "create_account",
        "create_contact",
        "update_account",
        "update_contact",
        "delete_account",
        "delete_contact",
    ]
)


class RunnerModel(RuleBasedStateMachine):
    """Dynamics changes, jobs with faults, duplicates, clock moves; then the sides agree."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.values = itertools.count(1)

    def _live(self, entity_set: str) -> list[str]:
        return sorted(self.world.dynamics.live(entity_set))

    def _pick(self, entity_set: str, index: int) -> str | None:
        live = self._live(entity_set)
        return live[index % len(live)] if live else None

    # --- Dynamics -------------------------------------------------------------------------

    @initialize(accounts=st.integers(0, 7), contacts=st.integers(0, 7))
    def seed(self, accounts: int, contacts: int) -> None:
        """Records that exist before the first sync (full reads of several pages)."""
        for _ in range(accounts):
            self.change("create_account", 0, None)
        for n in range(contacts):
            self.change("create_contact", 0, n)

    @rule(what=CHANGES, which=PICK, company=st.none() | PICK)
    def change(self, what: str, which: int, company: int | None) -> None:
        """A user creates, changes or deletes an account or a contact in Dynamics."""
        world = self.world
        side = ACCOUNT if what.endswith("account") else CONTACT
        link = None if company is None else self._pick(ACCOUNT.entity_set, company)
        if what.startswith("create"):
            record = world.dynamics.new_id()
        else:
            found = self._pick(side.entity_set, which)
            if found is None:
                return
            record = found
        if what.startswith("delete"):
            world.delete(side, record)
        elif side is ACCOUNT:
            world.upsert(ACCOUNT, record, {"name": f"a{next(self.values)}"})
        else:
            values: dict[str, object] = {"lastname": f"c{next(self.values)}"}
            if company is not None or what.startswith("create"):
                values[LINK_COLUMN] = link
            world.upsert(CONTACT, record, values)

    @rule()
    def expire_delta_tokens(self) -> None:
        self.world.dynamics.expire_tokens()

    # --- the app --------------------------------------------------------------------------

    @rule()
    def tick(self) -> None:
        self.world.tick()

    @precondition(lambda self: bool(self.world.queue.visible()))
    @rule(which=PICK, fault=FAULTS)
    def deliver(self, which: int, fault: Fault | None) -> None:
        """One visible job (any of them: delivery order is not guaranteed), with its fault."""
        visible = self.world.queue.visible()
        self._deliver(visible[which % len(visible)], fault)

    @rule(faults=st.lists(FAULTS, min_size=1, max_size=6), which=PICK)
    def tick_and_deliver(self, faults: list[Fault | None], which: int) -> None:
        """A tick, then up to one job per fault in the list, in a scrambled order."""
        self.world.tick()
        for n, fault in enumerate(faults):
            visible = self.world.queue.visible()
            if not visible:
                return
            self._deliver(visible[(which + n) % len(visible)], fault)

    def _deliver(self, message: Message, fault: Fault | None) -> None:
        if fault is not None and fault.kind == "freeze" and len(self.world.frozen) >= MAX_FROZEN:
            fault = None  # each frozen job holds a worker thread
        ran = self.world.run(message, fault)
        if ran.outcome is not None:
            event(f"job: {ran.outcome.value}")
        if fault is not None and ran.fired:
            event(f"fault fired: {fault.kind} at {ran.fired.split('(')[0]}")

    @precondition(lambda self: bool(self.world.queue.messages))
    @rule(which=PICK)
    def deliver_twice(self, which: int) -> None:
        messages = self.world.queue.messages
        self.world.queue.duplicate(messages[which % len(messages)])

    @precondition(lambda self: bool(self.world.queue.messages))
    @rule(which=PICK)
    def lose_message(self, which: int) -> None:
        messages = self.world.queue.messages
        messages.remove(messages[which % len(messages)])

    @rule(seconds=st.sampled_from([5, 60, 100, 1000]))
    def advance_clock(self, seconds: int) -> None:
        """1000 s outlasts a lease (15 min): a killed worker's stream is free again."""
        self.world.clock.advance(seconds)

    # --- checks ---------------------------------------------------------------------------

    @invariant()
    def no_key_twice_in_marketo(self) -> None:
        for side in (ACCOUNT, CONTACT):
            keys = [r.get(side.key_field) for r in self.world.marketo.of(side.target).values()]
            assert len(keys) == len(set(keys)), f"{side.entity}: a key is in Marketo twice"

    def teardown(self) -> None:
        try:
            problems = self.world.settle()
            marked = sum(
                r.get("dynamicsIsDeleted") is True
                for side in (ACCOUNT, CONTACT)
                for r in self.world.marketo.of(side.target).values()
            )
            event(f"records marked deleted: {min(marked, 3)}{'+' if marked >= 3 else ''}")
            if self.world.tolerated:
                event("known gap met: unmapped delete (tests/model/test_known_gaps.py)")
        finally:
            self.world.close()
        assert not problems, "after settling, the sides disagree:\n" + "\n".join(problems)


class FrozenWorkerModel(RunnerModel):
    """The same, plus workers that freeze in a storage call (a slow call, a paused process) while
    other jobs run: duplicates of theirs are turned away, their stream stays theirs. One that
    comes back after its lease lapsed counts as dead: going on would be the gap reproduced in
    :mod:`tests.model.test_known_gaps`."""

    @precondition(lambda self: bool(self.world.queue.visible()))
    @rule(which=PICK, at=st.integers(min_value=0, max_value=22))
    def deliver_and_freeze(self, which: int, at: int) -> None:
        visible = self.world.queue.visible()
        self._deliver(visible[which % len(visible)], Fault("freeze", at))

    @precondition(lambda self: bool(self.world.frozen))
    @rule(which=PICK)
    def thaw(self, which: int) -> None:
        ran = self.world.wake(self.world.frozen[which % len(self.world.frozen)])
        if ran.outcome is not None:
            event(f"thawed job: {ran.outcome.value}")


RunnerModel.TestCase.settings = settings(
    max_examples=SCHEDULES,
    stateful_step_count=40,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
TestRunnerModel = RunnerModel.TestCase

FrozenWorkerModel.TestCase.settings = settings(
    RunnerModel.TestCase.settings, max_examples=FROZEN_SCHEDULES
)
TestFrozenWorkerModel = FrozenWorkerModel.TestCase
