"""Chaos as a table: each kind a row of its weight and the factory of its effects.

:data:`CHAOS` maps a chaos kind to a :class:`ChaosKind`; :func:`pick_chaos` gives a request a
fault with probability ``rate``, of a kind drawn from the chosen kinds by their weights, all
from one seeded generator, so a seed replays the same faults on the same requests. A new kind
is one row (its effects come from :mod:`pipestatus.testing.faults`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from pipestatus.testing.faults import (
    Effect,
    Fault,
    Hang,
    Malformed,
    StatusAnswer,
    Trickle,
    Truncate,
    UnknownStatusWord,
)
from pipestatus.testing.hostile import (
    UNSENDABLE_ETAGS,
    Amplify,
    CyclePages,
    HostileStrings,
    NotHTTP,
    RawHeaders,
)

__all__ = ["CHAOS", "CHAOS_KINDS", "ChaosKind", "ChaosSettings", "pick_chaos"]


@attrs.frozen
class ChaosSettings:
    """How chaos runs: the share of requests it faults, the kinds it draws from, and how long
    its hangs and trickles last."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    hang: float = 30.0
    trickle: float = 0.05


@attrs.frozen
class ChaosKind:
    """One row of the chaos table: its weight in the draw, and the factory of its effects."""

    weight: float
    effects: Callable[[random.Random, ChaosSettings], tuple[Effect, ...]]


#: The chaos kinds: name -> (weight, the factory of its effects). A new kind is one row.
CHAOS: Final[Mapping[str, ChaosKind]] = {
    "http_500": ChaosKind(1.0, lambda _rng, _s: (StatusAnswer(500),)),
    "http_502": ChaosKind(1.0, lambda _rng, _s: (StatusAnswer(502),)),
    "http_503": ChaosKind(1.0, lambda _rng, _s: (StatusAnswer(503),)),
    "http_429": ChaosKind(
        1.0, lambda rng, _s: (StatusAnswer(429, retry_after=rng.choice((0, 1))),)
    ),
    "reset": ChaosKind(1.0, lambda _rng, _s: (Truncate(reset=True),)),
    "hang": ChaosKind(1.0, lambda _rng, s: (Hang(s.hang),)),
    "truncate": ChaosKind(1.0, lambda _rng, _s: (Truncate(),)),
    "malformed": ChaosKind(1.0, lambda _rng, _s: (Malformed(),)),
    "unknown_status": ChaosKind(1.0, lambda _rng, _s: (UnknownStatusWord(),)),
    "trickle": ChaosKind(1.0, lambda _rng, s: (Trickle(s.trickle),)),
    # A hostile server (pipestatus.testing.hostile): a huge array of wrong items, a validator
    # no client can send back, every string hostile, an answer that is not HTTP, pages in a
    # cycle (a request that does not page is answered as it is).
    "amplify": ChaosKind(1.0, lambda rng, _s: (Amplify(rng.choice((20_000, 50_000))),)),
    "bad_validator": ChaosKind(
        1.0, lambda rng, _s: (RawHeaders({"ETag": rng.choice(UNSENDABLE_ETAGS)}),)
    ),
    "hostile_strings": ChaosKind(1.0, lambda _rng, _s: (HostileStrings(),)),
    "not_http": ChaosKind(1.0, lambda _rng, _s: (NotHTTP(),)),
    "cycle_pages": ChaosKind(1.0, lambda rng, _s: (CyclePages(period=rng.choice((1, 2))),)),
}

CHAOS_KINDS: Final = tuple(CHAOS)


def pick_chaos(
    rng: random.Random, settings: ChaosSettings, table: Mapping[str, ChaosKind] = CHAOS
) -> Fault | None:
    """A fault for one request, with probability ``settings.rate``, of a kind drawn from
    ``settings.kinds`` by the table's weights; ``None`` for no fault."""
    if settings.rate <= 0 or not settings.kinds:
        return None
    if rng.random() >= settings.rate:
        return None
    kinds = settings.kinds
    (kind,) = rng.choices(kinds, weights=[table[name].weight for name in kinds])
    return Fault(effects=table[kind].effects(rng, settings), name=f"chaos:{kind}")
