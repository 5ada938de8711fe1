"""Fair share of free execution slots across users (DESIGN §5).

Weighted max-min fairness: each free slot goes to the user whose in-flight
work, divided by their weight, is smallest; so a user who queued 5,000 jobs
first cannot starve another user's 20, and a heavier tier gets
proportionally more. Within a user, batches go by priority, then age.
"""

import heapq
from collections.abc import Hashable, Iterable
from typing import TypeVar
from uuid import UUID

from batches.queue import QueuedBatch

K = TypeVar("K", bound=Hashable)


def fair_shares(*, free: int, demand: dict[K, int], held: dict[K, int], weights: dict[K, float]) -> dict[K, int]:
    """Split `free` slots among users with `demand` (ready jobs), given what
    each already `held` (in flight). Deterministic: ties go to the smaller key."""
    grants = {user: 0 for user in demand}
    heap = [(held.get(user, 0) / weights.get(user, 1.0), str(user), user) for user, n in demand.items() if n > 0]
    heapq.heapify(heap)
    while free > 0 and heap:
        _, order, user = heapq.heappop(heap)
        grants[user] += 1
        free -= 1
        if grants[user] < demand[user]:
            usage = (held.get(user, 0) + grants[user]) / weights.get(user, 1.0)
            heapq.heappush(heap, (usage, order, user))
    return {user: n for user, n in grants.items() if n}


def claim_plan(
    *,
    free: int,
    batches: Iterable[QueuedBatch],
    held: dict[int, int],
    weights: dict[int, float],
) -> list[tuple[UUID, int]]:
    """(batch id, jobs to claim) for this pass: users' fair shares, each spent
    on that user's batches by priority, then age. A batch at its own
    `max_in_flight` asks for nothing, so its owner's share goes to their next
    batch (the claim checks the cap again under the batch lock)."""
    per_user: dict[int, list[QueuedBatch]] = {}
    for batch in batches:
        if batch.claimable > 0:
            per_user.setdefault(batch.owner_id, []).append(batch)
    demand = {user: sum(b.claimable for b in user_batches) for user, user_batches in per_user.items()}
    shares = fair_shares(free=free, demand=demand, held=held, weights=weights)
    plan = []
    for user, share in shares.items():
        for batch in sorted(per_user[user], key=lambda b: (-b.priority, b.created_at, str(b.id))):
            take = min(share, batch.claimable)
            if take:
                plan.append((batch.id, take))
                share -= take
    return plan
