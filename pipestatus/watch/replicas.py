"""Which replica polls which target: rendezvous hashing over the live members. Pure.

Every member of a shared store registers under its name with an expiring heartbeat (the store
does that, on the server's clock). Each target belongs to a *group*: the targets of one
batching account (a v5 project) form one group, so they stay on one member and in one batch
request; any other target is a group of its own. A group is owned by the live member with the
highest weight ``hash(member, group)`` (highest random weight, Thaler and Ravishankar 1996):
every member computes the same owner from the same member list, with no coordination, and
when a member leaves or dies only its own groups move, spread over the others.

Timing, for a heartbeat period ``H``: a member renews every ``H/3`` with a time to live of
``2H/3``, so a dead member's registration lapses at most ``2H/3`` after its last renewal, and
the others, renewing every ``H/3``, see it gone within ``H``; a member whose renewal comes
more than ``H/3`` late is taken for dead meanwhile (its targets are polled twice for a moment,
and the store's compare-and-set keeps every change announced once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Final, TypeVar

__all__ = ["RENEW", "TTL", "owner", "owned", "weight"]

K = TypeVar("K")

#: Renewal period and time to live, as fractions of the heartbeat period.
RENEW: Final = 1 / 3
TTL: Final = 2 / 3


def weight(member: str, group: str) -> int:
    """The member's weight for the group: 64 bits of BLAKE2b, the same in every process."""
    digest = hashlib.blake2b(f"{member}\x00{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(group: str, members: Iterable[str]) -> str | None:
    """The member that owns ``group`` (``None`` without members); ties go to the larger name."""
    return max(members, key=lambda member: (weight(member, group), member), default=None)


def owned(groups: Mapping[K, str], members: Iterable[str], me: str) -> set[K]:
    """The items (targets) whose group ``me`` owns among ``members`` (``me`` counts as live)."""
    live = sorted({*members, me})
    owners: dict[str, str | None] = {}
    mine: set[K] = set()
    for item, group in groups.items():
        if group not in owners:
            owners[group] = owner(group, live)
        if owners[group] == me:
            mine.add(item)
    return mine
