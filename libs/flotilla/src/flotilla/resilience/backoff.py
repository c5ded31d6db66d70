"""Retry delays: exponential backoff with full jitter, a pure function of the attempt number.

Full jitter (a uniformly random delay between zero and the exponential cap) spreads the
retries of many tasks that failed together, say when a dependency came back, instead of
sending them back in synchronised waves; see "Exponential Backoff And Jitter" (AWS
Architecture Blog, 2015). Celery's own ``retry_jitter`` rounds to whole seconds, which makes
sub-second bases impossible, so the chassis computes the delay itself.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

_MAX_EXPONENT = 62
"""Beyond this the cap always wins; stopping here keeps ``2 ** retries`` a small number."""


def backoff_delay(
    retries: int,
    *,
    base: float,
    cap: float,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait before retry number ``retries + 1``: uniform in ``[0, min(cap, base·2^n)]``.

    ``random`` returns a float in ``[0, 1)``; tests inject a fixed one.
    """
    ceiling = min(cap, base * 2.0 ** min(max(retries, 0), _MAX_EXPONENT))
    return random() * ceiling
