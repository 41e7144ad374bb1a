"""What each racing process does in tests/test_races.py: open the project itself, wait at a barrier, act.

Every worker runs in its own process (multiprocessing's spawn start method) with its own
engine and connections, as two reviewers' browsers or two CLI commands would.
"""

from __future__ import annotations

import time
from typing import Any

from screening.decisions import decide, resolve, undo
from screening.errors import AlreadyDecided, DecisionError
from screening.progress import claim_next
from screening.stops import stop_stage
from screening.store import open_store

BARRIER_TIMEOUT_S = 60


def _outcome(call: Any) -> str:
    try:
        call()
    except AlreadyDecided:
        return "refused"
    except DecisionError as e:
        return f"error: {e}"
    return "ok"


def decide_each(db: str, reviewer: str, records: list[int], value: str, barrier: Any, out: Any) -> None:
    """Decide every record, meeting the other workers at the barrier before each one."""
    with open_store(db) as store:
        results = []
        for record in records:
            barrier.wait(BARRIER_TIMEOUT_S)
            results.append((record, _outcome(lambda r=record: decide(store, r, value, reviewer=reviewer))))
    out.put((reviewer, results))


def undo_times(db: str, reviewer: str, times: int, barrier: Any, out: Any) -> None:
    """Undo ``reviewer``'s latest decision ``times`` times, in step with the other workers."""
    with open_store(db) as store:
        results = []
        for _ in range(times):
            barrier.wait(BARRIER_TIMEOUT_S)
            try:
                results.append(("ok", undo(store, reviewer=reviewer).undoes_id))
            except DecisionError as e:
                results.append((f"error: {e}", None))
    out.put((reviewer, results))


def resolve_each(db: str, reviewer: str, records: list[int], value: str, barrier: Any, out: Any) -> None:
    with open_store(db) as store:
        results = []
        for record in records:
            barrier.wait(BARRIER_TIMEOUT_S)
            call = lambda r=record: resolve(store, r, value, reviewer=reviewer, stage="title_abstract")  # noqa: E731
            results.append((record, _outcome(call)))
    out.put((reviewer, results))


def screen_queue(db: str, reviewer: str, ranked: list[int], barrier: Any, out: Any) -> None:
    """What the Screen page does, as fast as it can: claim the next record, decide it, until none is left."""
    with open_store(db) as store:
        barrier.wait(BARRIER_TIMEOUT_S)
        results = []
        while True:
            claim = claim_next(store, ranked, reviewer=reviewer)
            if claim.record_id is None:
                if claim.held_by_others:  # another reviewer's record on screen: it may still come free
                    time.sleep(0.01)
                    continue
                break
            record, value = claim.record_id, "include" if claim.record_id % 3 == 0 else "exclude"
            results.append((record, _outcome(lambda: decide(store, record, value, reviewer=reviewer))))  # noqa: B023
    out.put((reviewer, results))


def stop_at(db: str, reviewer: str, rounds: int, at: int, barrier: Any, out: Any) -> None:
    """Meet the deciding workers at the barrier ``rounds`` times and stop the stage (forced) in round ``at``."""
    with open_store(db) as store:
        results = []
        for i in range(rounds):
            barrier.wait(BARRIER_TIMEOUT_S)
            if i == at:
                result = stop_stage(store, reviewer=reviewer, force=True, note="race test")
                results.append((result.stop.id, result.stop.records))
    out.put((reviewer, results))
