"""What the stage services have reported about one confirmed order. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.schemas.common import Reason


def short_pick_key(task_id: str, line_id: str) -> str:
    return f"{task_id}/{line_id}"


def consignment(warehouse_id: str, backorder_round: str | None) -> str:
    """What the order waits for to be packed and dispatched, once each: a warehouse's
    units of one allocation round. The reservation's round is named by the warehouse
    alone (as before rounds were told apart); a backorder round allocated there later
    is packed and shipped on its own, even where the warehouse has shipped already."""
    return warehouse_id if backorder_round is None else f"{warehouse_id}@{backorder_round}"


@dataclass(frozen=True)
class Progress:
    """What the stage services have reported about one order (sets, so repeats are no-ops)."""

    consignments: frozenset[str] = frozenset()  # where stock is held for it, per round
    picking_started: bool = False
    packed: frozenset[str] = frozenset()  # consignments
    package_ids: frozenset[str] = frozenset()
    dispatched: frozenset[str] = frozenset()  # consignments
    shipments: frozenset[str] = frozenset()
    delivered: frozenset[str] = frozenset()  # shipments
    estimated_delivery: date | None = None
    open_exception: Reason | None = None  # reported and not yet followed by a delivery
    short_picks: tuple[Reason, ...] = ()
    # (task, line) picked short, and those inventory has answered (allocated again,
    # backordered or written off): the two arrive on different topics, in either order
    short_picked: frozenset[str] = frozenset()
    short_picks_settled: frozenset[str] = frozenset()
    captured: bool = False
    backorder_pending: bool = False  # backordered lines not yet allocated anywhere

    @property
    def short_picks_unsettled(self) -> bool:
        """A short pick inventory has not answered yet: more may have to ship."""
        return not self.short_picked <= self.short_picks_settled

    def to_json(self) -> dict[str, object]:
        return {
            "consignments": sorted(self.consignments),
            "picking_started": self.picking_started,
            "packed": sorted(self.packed),
            "package_ids": sorted(self.package_ids),
            "dispatched": sorted(self.dispatched),
            "shipments": sorted(self.shipments),
            "delivered": sorted(self.delivered),
            "estimated_delivery": self.estimated_delivery.isoformat()
            if self.estimated_delivery
            else None,
            "open_exception": self.open_exception.model_dump() if self.open_exception else None,
            "short_picks": [r.model_dump() for r in self.short_picks],
            "short_picked": sorted(self.short_picked),
            "short_picks_settled": sorted(self.short_picks_settled),
            "captured": self.captured,
            "backorder_pending": self.backorder_pending,
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Progress:
        def names(key: str) -> frozenset[str]:
            return frozenset(raw.get(key) or ())  # type: ignore[call-overload]

        eta = raw.get("estimated_delivery")
        exception = raw.get("open_exception")
        return cls(
            # "warehouses": the name before backorder rounds had consignments of their own
            consignments=names("consignments") or names("warehouses"),
            picking_started=bool(raw.get("picking_started")),
            packed=names("packed"),
            package_ids=names("package_ids"),
            dispatched=names("dispatched"),
            shipments=names("shipments"),
            delivered=names("delivered"),
            estimated_delivery=date.fromisoformat(eta) if isinstance(eta, str) else None,
            open_exception=Reason.model_validate(exception) if exception else None,
            short_picks=tuple(
                Reason.model_validate(r)
                for r in raw.get("short_picks") or ()  # type: ignore[attr-defined]
            ),
            short_picked=names("short_picked"),
            short_picks_settled=names("short_picks_settled"),
            captured=bool(raw.get("captured")),
            backorder_pending=bool(raw.get("backorder_pending")),
        )
