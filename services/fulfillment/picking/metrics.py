"""Picking's Prometheus metrics, beside the runtime's (served on ``/metrics``).

Counted when the change is written, inside its transaction: a transaction that is rolled
back and retried counts twice, so these are for dashboards, not for reconciliation.
"""

from __future__ import annotations

from prometheus_client import Counter

TASKS_RELEASED = Counter(
    "conveyor_picking_tasks_released_total", "Tasks released to pickers", ["strategy"]
)
CONFIRMATIONS = Counter(
    "conveyor_picking_confirmations_total",
    "Pick confirmations by source and outcome (accepted, replayed or the rejection code)",
    ["source", "outcome"],
)
LINES_ENDED = Counter(
    "conveyor_picking_lines_total", "Task lines ended, picked in full or short", ["outcome"]
)
TASKS_COMPLETED = Counter("conveyor_picking_tasks_completed_total", "Tasks completed")
