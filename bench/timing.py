"""Samples of one measured figure, one per round, and how benchmarks read them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """One figure's samples, one per round: µs per call, or seconds of wall time.

    Rounds of different figures interleave, so sample *i* of two timings saw the same
    machine; ratios and differences are therefore taken round by round.
    """

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The usual figure."""
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        """The least disturbed figure."""
        return min(self.samples)

    def ratio_to(self, baseline: Timing) -> float:
        """Median over rounds of this round's figure divided by the baseline's."""
        return statistics.median(
            mine / theirs for mine, theirs in zip(self.samples, baseline.samples, strict=True)
        )

    def added_to(self, baseline: Timing) -> float:
        """Median over rounds of this round's figure minus the baseline's."""
        return statistics.median(
            mine - theirs for mine, theirs in zip(self.samples, baseline.samples, strict=True)
        )
