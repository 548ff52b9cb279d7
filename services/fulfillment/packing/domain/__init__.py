"""Packing rules, pure: the model (sizes, boxes, products, tasks), an order's tasks at a
warehouse grouped by allocation round, cartonization and the packed event. See
docs/packing.md for the rules in prose."""

from services.fulfillment.packing.domain.cartonization import (
    Cartonization,
    PackVerificationError,
    Parcel,
    Unit,
    cartonize,
    verify,
)
from services.fulfillment.packing.domain.groups import (
    Group,
    Noted,
    OrderAtWarehouse,
    Report,
    TaskReport,
    report_of,
)
from services.fulfillment.packing.domain.model import (
    PACKING_NAMESPACE,
    Box,
    Catalog,
    PickedLine,
    Product,
    Size,
    Task,
    all_tasks_completed,
    package_id_for,
    packing_id_for,
    picked_lines,
)
from services.fulfillment.packing.domain.packed import nothing_picked, package, packed

__all__ = [
    "PACKING_NAMESPACE",
    "Box",
    "Cartonization",
    "Catalog",
    "Group",
    "Noted",
    "OrderAtWarehouse",
    "PackVerificationError",
    "Parcel",
    "PickedLine",
    "Product",
    "Report",
    "Size",
    "Task",
    "TaskReport",
    "Unit",
    "all_tasks_completed",
    "cartonize",
    "nothing_picked",
    "package",
    "package_id_for",
    "packed",
    "packing_id_for",
    "picked_lines",
    "report_of",
    "verify",
]
