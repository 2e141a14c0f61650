"""A cost ceiling shared by concurrent paid calls (:meth:`fifa.core.llm.OpenAIClient.ask`'s ``budget``: the conversation
builder's ``--fc-max-cost`` and the judge's ``--judge-max-cost``).

A call reserves its estimated cost before it starts and settles its real cost when it ends, so the calls
in flight can never together pass ``max_cost``; a refused reservation is counted (``stops``).
"""

from __future__ import annotations

import threading


class CostBudget:
    def __init__(self, max_cost: float | None):
        self.max_cost = max_cost
        self.spent = 0.0
        self.in_flight = 0.0
        self.stops = 0
        self._lock = threading.Lock()

    def reserve(self, estimate: float) -> bool:
        """Room for a call of ``estimate``? If so it is held until :meth:`settle`."""
        with self._lock:
            if self.max_cost is not None and self.spent + self.in_flight + estimate > self.max_cost:
                self.stops += 1
                return False
            self.in_flight += estimate
            return True

    def settle(self, estimate: float, cost: float) -> None:
        """A reserved call ended: its estimate is released, its real cost spent."""
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - estimate)
            self.spent += cost
