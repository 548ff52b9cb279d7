"""Apply pickers' confirmations: the one path for handhelds (HTTP), ``picking.confirm_pick``
commands and the simulated picker.

Inside the caller's unit of work: lock the tasks, look up each confirmation id (a retry
gets the stored receipt back), apply the rules, write the progress, the confirmations
(accepted or not) and the events — ``item_picked`` or ``short_picked`` when a line ends,
``completed`` once when the task does. A rejected confirmation changes no task; one for a
task that does not exist is answered (404) but not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.fulfillment.picking import domain, store
from services.fulfillment.picking.domain import Accepted, Rejected, Scan, Task
from services.fulfillment.picking.metrics import (
    CONFIRMATIONS,
    LINES_ENDED,
    TASKS_COMPLETED,
)
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import (
    ItemCount,
    ItemPicked,
    PickingCompleted,
    PickItem,
    ShortPicked,
)

log = get_logger(__name__)

Source = Literal["handheld", "command", "simulator"]
STATUS_CODE = {"mispick": 422, "conflict": 409, "not_found": 404}


@dataclass(frozen=True)
class ScanRequest:
    confirmation_id: str
    task_id: str
    scan: Scan
    source: Source

    def same_as(self, prior: store.ConfirmationRow) -> bool:
        s = self.scan
        asked = (self.task_id, s.sku, s.location, s.quantity, s.closes_item)
        before = (prior.task_id, prior.sku, prior.location, prior.quantity, prior.closes_item)
        return asked == before and s.line_id in (None, prior.line_id)


class ScanReceipt(BaseModel):
    """The answer to one confirmation; stored, so a retry gets the same one back."""

    confirmation_id: str
    task_id: str
    accepted: bool
    status_code: int = Field(description="200 accepted, 404/409/422 rejected")
    error: Reason | None = None
    line_id: str | None = None
    sku: str
    units: int = Field(0, description="units taken by this confirmation")
    picked: int = Field(0, description="units of the line picked so far")
    remaining: int = 0
    line_status: Literal["open", "picked", "short"] | None = None
    task_status: str | None = None
    replayed: bool = Field(False, description="a retry: this is the stored first answer")


def _receipt(request: ScanRequest, result: Accepted | Rejected) -> ScanReceipt:
    base: dict[str, Any] = {
        "confirmation_id": request.confirmation_id,
        "task_id": request.task_id,
        "sku": request.scan.sku,
    }
    if isinstance(result, Rejected):
        code = STATUS_CODE[result.kind]
        return ScanReceipt(**base, accepted=False, status_code=code, error=result.reason)
    item = result.item
    return ScanReceipt(
        **base,
        accepted=True,
        status_code=200,
        line_id=item.line_id,
        units=result.units,
        picked=item.picked,
        remaining=item.remaining,
        line_status=item.status,
        task_status=result.task.status.value,
    )


def _replayed(request: ScanRequest, prior: store.ConfirmationRow) -> ScanReceipt:
    if request.same_as(prior):
        return ScanReceipt.model_validate({**prior.receipt, "replayed": True})
    reused = Reason(
        code="confirmation_id_reused",
        field="confirmation_id",
        message="this confirmation_id was already used for a different scan",
    )
    return ScanReceipt(
        confirmation_id=request.confirmation_id,
        task_id=request.task_id,
        sku=request.scan.sku,
        accepted=False,
        status_code=409,
        error=reused,
    )


def _record(request: ScanRequest, receipt: ScanReceipt) -> store.ConfirmationRow:
    s = request.scan
    return store.ConfirmationRow(
        confirmation_id=request.confirmation_id,
        task_id=request.task_id,
        line_id=receipt.line_id or s.line_id,
        sku=s.sku,
        location=s.location,
        quantity=s.quantity,
        closes_item=s.closes_item,
        picker_id=s.picker_id,
        source=request.source,
        receipt=receipt.model_dump(mode="json"),
    )


def _line_ended(task: Task, item: domain.TaskItem, picker_id: str, now: datetime) -> Message:
    pick = PickItem(
        line_id=item.line_id, sku=item.sku, quantity=item.quantity, location=item.location
    )
    ids = {"order_id": task.order_id, "task_id": task.task_id, "warehouse_id": task.warehouse_id}
    if item.short:
        log.info(
            "picking.short_pick",
            **ids,
            sku=item.sku,
            missing=item.quantity - item.picked,
            detail="inventory writes the missing units off and allocates them again; the task "
            "completes with what was found",
        )
        return ShortPicked(
            **ids, occurred_at=now, item=pick, picked=item.picked, picker_id=picker_id
        )
    return ItemPicked(**ids, occurred_at=now, item=pick, picker_id=picker_id)


def _completed(task: Task, now: datetime) -> PickingCompleted:
    done = domain.completion(task)
    return PickingCompleted(
        order_id=task.order_id,
        occurred_at=now,
        task_id=task.task_id,
        warehouse_id=task.warehouse_id,
        picked=[ItemCount(line_id=i.line_id, sku=i.sku, quantity=i.picked) for i in done.picked],
        short_line_ids=done.short_line_ids,
    )


async def confirm_scans(
    uow: UnitOfWork, requests: list[ScanRequest], *, now: datetime, cause: Envelope | None = None
) -> list[ScanReceipt]:
    """Apply the confirmations in order, in the caller's transaction; one receipt each."""
    conn = uow.conn
    stored = await store.load_tasks(conn, (r.task_id for r in requests), lock=True)
    # looked up after the lock: a concurrent retry of the same id has committed by now
    seen = await store.find_confirmations(conn, (r.confirmation_id for r in requests))
    tasks = {task_id: s.task for task_id, s in stored.items()}
    receipts: list[ScanReceipt] = []
    rows: list[store.ConfirmationRow] = []
    events: list[Message] = []
    changed: dict[str, Task] = {}
    completed: list[Task] = []
    for request in requests:
        prior = seen.get(request.confirmation_id)
        if prior is not None:
            replayed = _replayed(request, prior)
            receipts.append(replayed)
            outcome = "replayed" if replayed.replayed else "confirmation_id_reused"
            CONFIRMATIONS.labels(request.source, outcome).inc()
            continue
        task = tasks.get(request.task_id)
        result = (
            domain.confirm(task, request.scan) if task else domain.task_not_found(request.task_id)
        )
        receipt = _receipt(request, result)
        if isinstance(result, Accepted):
            tasks[request.task_id] = changed[request.task_id] = result.task
            CONFIRMATIONS.labels(request.source, "accepted").inc()
            if result.line_ended:
                events.append(_line_ended(result.task, result.item, request.scan.picker_id, now))
                LINES_ENDED.labels(result.item.status).inc()
            if result.completed:
                completed.append(result.task)
        else:
            CONFIRMATIONS.labels(request.source, result.code).inc()
            log.warning(
                "picking.confirmation_rejected",
                code=result.code,
                reason=result.message,
                task_id=request.task_id,
                confirmation_id=request.confirmation_id,
                source=request.source,
            )
        receipts.append(receipt)
        if task is None:
            continue  # nothing to attach it to: refused, not recorded
        row = _record(request, receipt)
        rows.append(row)
        seen[request.confirmation_id] = row  # the same id again in this batch: a replay
    await store.save_progress(conn, list(changed.values()), now)
    await store.insert_confirmations(conn, rows)
    first_time = await store.insert_completions(
        conn, [(t.task_id, domain.completion(t).short_line_ids) for t in completed], now
    )
    events += [_completed(t, now) for t in completed if t.task_id in first_time]
    TASKS_COMPLETED.inc(len(first_time))
    for event in events:
        await uow.emit(event, cause=cause)
    return receipts
