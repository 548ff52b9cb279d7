"""The carrier webhook's contract: the body a carrier posts, and how it is signed.

Signed as `Standard Webhooks <https://www.standardwebhooks.com/>`_ (symmetric, ``v1``):

- ``webhook-id``: the message's id, the same on every retry (our replay key);
- ``webhook-timestamp``: when this attempt was sent, integer Unix seconds;
- ``webhook-signature``: space-separated ``v1,<base64>`` entries, each the HMAC-SHA256 of
  ``{id}.{timestamp}.{raw body}`` under one secret. A carrier rotating its secret signs
  with the new and the old one; one matching entry is enough.

The secret is ``whsec_<base64>`` (the prefix is optional, as in the reference libraries)
of 24 to 64 random bytes: the base64-decoded bytes are the HMAC key. The signature covers
the raw bytes, so a body re-serialized on the way fails exactly as a forged one does; it
is compared in constant time.

The reference Python library (``standardwebhooks`` on PyPI) fixes the tolerance at five
minutes; here it is a setting, and the headers are checked before the body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.schemas.events.fulfillment import TrackingStatus

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
KEY_BYTES = (24, 64)  # the spec's bounds for a symmetric secret
# no "." (it delimits the signed content), printable, bounded
_ID = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,255}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


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


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError if it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    low, high = KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"a webhook secret decodes to {low} to {high} bytes, not {len(key)}")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` entry: ``body`` as message ``msg_id`` sent at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def signed_headers(
    body: bytes, *secrets: str, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """What a carrier sends with ``body``: signed with each secret (during a rotation, the
    new one and the old one), now and under a fresh id unless given."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets),
    }


class Refused(Exception):
    """Not a delivery we can trust: answer 401 with the reason."""


@dataclass(frozen=True)
class Delivery:
    """A delivery's checked headers, before its body is read."""

    msg_id: str
    timestamp: int
    signatures: str

    @property
    def signed_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)


class Verifier:
    """Checks deliveries against our secret: the headers and the timestamp's tolerance
    first (nothing read yet), then the signature over the body."""

    def __init__(
        self, secret: str, *, tolerance_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = signing_key(secret)
        self.tolerance_s = tolerance_s
        self._clock = clock

    def check_headers(self, headers: Mapping[str, str | None]) -> Delivery:
        msg_id = headers.get(ID_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        signatures = headers.get(SIGNATURE_HEADER)
        if not (msg_id and timestamp and signatures):
            raise Refused(f"missing {ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
        if not _ID.fullmatch(msg_id):
            raise Refused(f"{ID_HEADER} must be 1-255 printable characters without '.'")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Refused(f"{TIMESTAMP_HEADER} must be integer Unix seconds")
        if abs(self._clock() - int(timestamp)) > self.tolerance_s:
            raise Refused(f"{TIMESTAMP_HEADER} is more than {self.tolerance_s:g} s from now")
        return Delivery(msg_id, int(timestamp), signatures)

    def check_body(self, delivery: Delivery, body: bytes) -> None:
        signed = f"{delivery.msg_id}.{delivery.timestamp}.".encode() + body
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        for entry in delivery.signatures.split():
            version, _, encoded = entry.partition(",")
            if version != "v1":
                continue  # another scheme (v1a: asymmetric) we hold no key for
            try:
                candidate = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                continue
            if hmac.compare_digest(expected, candidate):
                return
        raise Refused(f"no {SIGNATURE_HEADER} entry matches the body")
