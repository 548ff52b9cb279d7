"""Wiring of the payment service: its handlers, the gateway adapter, migrations.

No HTTP API of its own (health, readiness and metrics come from the runtime).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.payment import handlers
from services.payment.gateway import SandboxGateway
from services.payment.store import PostgresSandboxLedger
from shared.runtime.db import create_pool
from shared.runtime.external import RetryPolicy
from shared.runtime.service import ServiceContext, ServiceDefinition


class PaymentSettings(BaseSettings):
    """``CONVEYOR_PAYMENT_*``: which gateway, and how hard to retry it."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_PAYMENT_", extra="ignore")

    gateway: Literal["sandbox"] = "sandbox"  # a provider's adapter plugs in here
    gateway_attempts: int = 4
    gateway_retry_initial_s: float = 0.1
    gateway_retry_max_s: float = 2.0
    # orders whose gateway calls may be in flight at once (each order's calls in turn)
    gateway_calls_at_once: int = 16

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(self.gateway_attempts, 1),
            initial_s=self.gateway_retry_initial_s,
            max_s=self.gateway_retry_max_s,
        )


def definition() -> ServiceDefinition:
    settings = PaymentSettings()
    ledger = PostgresSandboxLedger()
    gateway = SandboxGateway(ledger)

    async def sandbox_ledger(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        """Give the sandbox a database pool of its own once the service has a database:
        as many connections as orders whose calls may be in flight."""
        pool = await create_pool(
            ctx.settings.database_url,
            ctx.schema,
            max_size=max(settings.gateway_calls_at_once, 1),
        )
        ctx.after_stop.append(pool.close)  # not before the consumer's last gateway call
        ledger.attach(pool)
        await stopping.wait()

    return ServiceDefinition(
        name="payment",
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.build(
            gateway, settings.retry_policy(), at_once=max(settings.gateway_calls_at_once, 1)
        ),
        router=None,
        background=[sandbox_ledger],
    )
