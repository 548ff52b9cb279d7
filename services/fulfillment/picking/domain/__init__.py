"""Picking rules, pure: the warehouse layout, planning tasks by strategy, trips (batch
and wave), confirmations (mis-pick, short pick, completion), the simulated picker.

See docs/picking.md for the rules in prose.
"""

from services.fulfillment.picking.domain.layout import (
    UNSLOTTED_LOCATION,
    UNSLOTTED_ZONE,
    BatchParams,
    Bin,
    Layout,
    WarehouseLayout,
    WaveParams,
    Zone,
)
from services.fulfillment.picking.domain.planning import (
    Allocated,
    OrderState,
    PickLine,
    Plan,
    PlannedTask,
    backorder_round_id,
    plan_tasks,
    task_id_for,
)
from services.fulfillment.picking.domain.scanning import (
    OPEN,
    Accepted,
    Completion,
    Rejected,
    Scan,
    Task,
    TaskItem,
    TaskStatus,
    completion,
    confirm,
    task_not_found,
)
from services.fulfillment.picking.domain.simulation import simulated_scans
from services.fulfillment.picking.domain.trips import (
    Joined,
    Trip,
    TripKind,
    TripPolicy,
    due,
    join,
    open_trip,
    trip_id_for,
)

__all__ = [
    "OPEN",
    "UNSLOTTED_LOCATION",
    "UNSLOTTED_ZONE",
    "Accepted",
    "Allocated",
    "BatchParams",
    "Bin",
    "Completion",
    "Joined",
    "Layout",
    "OrderState",
    "PickLine",
    "Plan",
    "PlannedTask",
    "Rejected",
    "Scan",
    "Task",
    "TaskItem",
    "TaskStatus",
    "Trip",
    "TripKind",
    "TripPolicy",
    "WarehouseLayout",
    "WaveParams",
    "Zone",
    "backorder_round_id",
    "completion",
    "confirm",
    "due",
    "join",
    "open_trip",
    "plan_tasks",
    "simulated_scans",
    "task_id_for",
    "task_not_found",
    "trip_id_for",
]
