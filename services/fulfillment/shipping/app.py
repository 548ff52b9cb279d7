"""Wiring of the shipping service: settings, the carrier adapter, the tracking simulator,
handlers, migrations and the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.fulfillment.shipping import api, handlers, network, webhook
from services.fulfillment.shipping.dispatch import Dispatcher
from services.fulfillment.shipping.domain.shopping import SERVICE_LEVEL_DAYS
from services.fulfillment.shipping.simulated_carrier import SimulatedCarrier
from services.fulfillment.shipping.simulator import SimulatorSettings, TrackingSimulator
from services.fulfillment.shipping.store.carrier import PostgresLabelLedger
from shared.runtime.external import RetryPolicy
from shared.runtime.service import ServiceContext, ServiceDefinition

NAME = "shipping"
# For development and tests only: refused when CONVEYOR_ENVIRONMENT=production.
# whsec_ + base64("conveyor-dev-webhook-secret")
DEV_WEBHOOK_SECRET = "whsec_Y29udmV5b3ItZGV2LXdlYmhvb2stc2VjcmV0"


class ShippingSettings(BaseSettings):
    """``CONVEYOR_SHIPPING_*``: carrier, promise table, webhook secret, simulator."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_SHIPPING_", extra="ignore")

    environment: str = Field("development", validation_alias=AliasChoices("CONVEYOR_ENVIRONMENT"))
    carrier: Literal["simulated"] = "simulated"  # a real carrier's adapter plugs in here
    seed: int = 42  # the simulated carrier's tracking numbers and scan plans
    webhook_secret: str = DEV_WEBHOOK_SECRET  # whsec_<base64 of 24-64 bytes>
    # webhook-timestamp may be this far from now, either way; receipts are kept twice as long
    webhook_tolerance_s: int = Field(300, gt=0)
    # a scan's occurred_at may be this far ahead of our clock; later is refused (422)
    webhook_clock_skew_s: int = Field(300, ge=0)
    webhook_max_body_bytes: int = Field(64 * 1024, ge=1024)
    # business days from placement each service level promises (JSON in the environment)
    service_level_days: dict[str, int] = Field(default_factory=lambda: dict(SERVICE_LEVEL_DAYS))
    carrier_attempts: int = Field(3, ge=1)
    carrier_retry_initial_s: float = Field(0.1, ge=0)
    carrier_retry_max_s: float = Field(1.0, ge=0)
    warehouses_file: Path = network.WAREHOUSES
    carriers_file: Path = network.CARRIERS

    simulator_enabled: bool = True
    simulator_step_seconds: float = Field(5.0, ge=0)  # a demo pace; real carriers take days
    simulator_delay_probability: float = Field(0.0, ge=0, le=1)
    simulator_exception_probability: float = Field(0.0, ge=0, le=1)
    simulator_batch_size: int = Field(500, ge=1)
    simulator_poll_interval_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> ShippingSettings:
        if self.environment == "production" and self.webhook_secret == DEV_WEBHOOK_SECRET:
            raise ValueError("production needs CONVEYOR_SHIPPING_WEBHOOK_SECRET set")
        try:
            webhook.signing_key(self.webhook_secret)
        except ValueError as exc:
            raise ValueError(f"CONVEYOR_SHIPPING_WEBHOOK_SECRET: {exc}") from None
        for level in SERVICE_LEVEL_DAYS:
            if self.service_level_days.get(level, -1) < 0:
                raise ValueError(f"service_level_days needs a day count for {level!r}")
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.carrier_attempts,
            initial_s=self.carrier_retry_initial_s,
            max_s=self.carrier_retry_max_s,
        )

    def simulator(self) -> SimulatorSettings:
        return SimulatorSettings(
            seed=self.seed,
            step_seconds=self.simulator_step_seconds,
            delay_probability=self.simulator_delay_probability,
            exception_probability=self.simulator_exception_probability,
            batch_size=self.simulator_batch_size,
            poll_interval_s=self.simulator_poll_interval_s,
        )


def definition(settings: ShippingSettings | None = None) -> ServiceDefinition:
    settings = settings or ShippingSettings()
    ledger = PostgresLabelLedger()
    carrier = SimulatedCarrier(
        network.load_carriers(settings.carriers_file), ledger, seed=settings.seed
    )
    simulator = (
        TrackingSimulator(settings.simulator(), schema=f"{NAME}_service")
        if settings.simulator_enabled
        else None
    )
    dispatcher = Dispatcher(
        carrier,
        network.load_warehouses(settings.warehouses_file),
        retry=settings.retry_policy(),
        days_by_level=settings.service_level_days,
        on_dispatch=simulator.enroll if simulator else None,
    )

    async def simulated_carrier_ledger(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        """Give the simulated carrier its database once the service has one."""
        ledger.attach(ctx.settings.database_url, ctx.schema)
        await stopping.wait()
        await ledger.close()

    def http(ctx: ServiceContext) -> APIRouter:
        return api.router(
            ctx,
            verifier=webhook.Verifier(
                settings.webhook_secret, tolerance_s=settings.webhook_tolerance_s
            ),
            carriers=carrier.carriers(),
            max_body_bytes=settings.webhook_max_body_bytes,
            clock_skew=timedelta(seconds=settings.webhook_clock_skew_s),
        )

    return ServiceDefinition(
        name=NAME,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.build(dispatcher),
        router=http,
        background=[simulated_carrier_ledger, *([simulator.run] if simulator else [])],
    )
