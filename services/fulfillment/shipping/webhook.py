"""The carrier webhook's contract: the body a carrier posts and its signature.

``X-Conveyor-Signature: sha256=<hex>`` is the HMAC-SHA256 of the *raw* request body
with the shared secret, so a body re-serialized on the way (spaces, key order) fails
the check exactly as a forged one does. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.schemas.events.fulfillment import TrackingStatus

SIGNATURE_HEADER = "X-Conveyor-Signature"
SCHEME = "sha256="


class CarrierScan(BaseModel):
    """One tracking scan as a carrier reports it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tracking_number: str = Field(min_length=1, max_length=64)
    carrier_event_id: str = Field(min_length=1, max_length=200)
    status: TrackingStatus
    location: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=1000)
    estimated_delivery: date | None = None
    occurred_at: AwareDatetime


def sign(secret: str, body: bytes) -> str:
    """The header value a carrier sends for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SCHEME}{digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith(SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())
