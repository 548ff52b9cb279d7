"""What the simulated picker does with a task: the scans a person would make. Pure.

Every open line is taken in full from its bin, except that with probability
``short_probability`` (decided by a seeded generator per task and line, so a rerun makes
the same choices) fewer units are found and the line is reported short.
"""

from __future__ import annotations

import random

from services.fulfillment.picking.domain.scanning import Scan, Task


def simulated_scans(
    task: Task, *, short_probability: float, seed: int, picker_id: str
) -> list[Scan]:
    scans: list[Scan] = []
    for item in task.items:
        if item.done:
            continue
        chance = random.Random(f"{seed}:{task.task_id}:{item.line_id}")
        short = short_probability > 0 and chance.random() < short_probability
        found = chance.randrange(item.remaining) if short else item.remaining
        scans.append(
            Scan(
                sku=item.sku,
                location=item.location,
                quantity=found,
                picker_id=picker_id,
                line_id=item.line_id,
                closes_item=short,
            )
        )
    return scans
