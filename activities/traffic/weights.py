"""Spreading requests over endpoints by weight, deterministically.

Smooth weighted round-robin (as nginx balances upstreams): over any stretch of requests each endpoint gets
its share within one request, interleaved rather than in runs, so a short phase still sees every endpoint
in proportion, and counts in tests are exact rather than random.
"""

from __future__ import annotations

from collections.abc import Sequence


class WeightedCycle:
    """Yields endpoint indexes in proportion to ``weights`` (positive numbers), smoothly interleaved."""

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights or any(w <= 0 for w in weights):
            raise ValueError("expected one or more positive weights")
        self._weights = list(weights)
        self._total = sum(self._weights)
        self._current = [0.0] * len(self._weights)

    def next(self) -> int:
        """The index of the endpoint the next request goes to."""
        if len(self._weights) == 1:
            return 0
        best = 0
        for i, weight in enumerate(self._weights):
            self._current[i] += weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        return best
