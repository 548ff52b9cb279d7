"""Book a goods receipt: publish ``inventory.receive_stock.v1`` on ``inventory.commands``.

    python -m services.inventory.receive SKU WAREHOUSE QTY [--receipt-id ID]
        [--reference PO] [--received-by WHO]             # KAFKA_BOOTSTRAP_SERVERS

The service books each receipt id once: to retry a receipt, pass the id printed by the
first attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import uuid

from shared.runtime.client import publish
from shared.runtime.settings import Settings
from shared.schemas.events.inventory import ReceiveStock


async def publish_receipt(bootstrap: str, command: ReceiveStock) -> str:
    """Publish the command (key: SKU); returns its ce_id."""
    return await publish(bootstrap, command, source=f"cli/{command.received_by}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.inventory.receive",
        description="Book units into a warehouse (publishes inventory.receive_stock.v1).",
    )
    parser.add_argument("sku")
    parser.add_argument("warehouse_id")
    parser.add_argument("quantity", type=int)
    parser.add_argument("--receipt-id", default=None, help="reuse to retry a receipt")
    parser.add_argument("--reference", default="", help="purchase order or delivery note")
    parser.add_argument("--received-by", default=None)
    args = parser.parse_args(argv)
    if args.quantity <= 0:
        parser.error("quantity must be positive")
    command = ReceiveStock(
        sku=args.sku,
        warehouse_id=args.warehouse_id,
        quantity=args.quantity,
        receipt_id=args.receipt_id or f"rcpt-{uuid.uuid4()}",
        reference=args.reference,
        received_by=args.received_by or getpass.getuser(),
    )
    settings = Settings(service="inventory")
    event_id = asyncio.run(publish_receipt(settings.kafka_bootstrap_servers, command))
    print(
        f"receipt {command.receipt_id}: {command.quantity} x {command.sku} into "
        f"{command.warehouse_id} (event {event_id})"
    )


if __name__ == "__main__":
    main()
