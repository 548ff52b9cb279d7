"""The webhook's signature (webhook.py): HMAC-SHA256 of the raw body, ``sha256=<hex>``."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from pydantic import ValidationError

from services.fulfillment.shipping.webhook import CarrierScan, sign, verify

SECRET = "s3cret"
BODY = json.dumps(
    {
        "tracking_number": "SWP0123",
        "carrier_event_id": "evt-1",
        "status": "delayed",
        "occurred_at": "2025-03-03T10:00:00Z",
    }
).encode()


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == f"sha256={expected}"
    assert verify(SECRET, BODY, f"sha256={expected}")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=deadbeef",
        sign("another secret", BODY),
        sign(SECRET, BODY + b" "),  # the same JSON, re-serialized: not the body we got
        sign(SECRET, BODY).removeprefix("sha256="),  # no scheme
        sign(SECRET, BODY).replace("sha256=", "sha1="),
    ],
)
def test_wrong_or_missing_signatures_fail(header: str | None) -> None:
    assert not verify(SECRET, BODY, header)


def test_a_tampered_body_fails() -> None:
    header = sign(SECRET, BODY)
    assert not verify(SECRET, BODY.replace(b"delayed", b"delivered"), header)


def test_scan_body() -> None:
    scan = CarrierScan.model_validate_json(BODY)
    assert scan.status == "delayed" and scan.description == "" and scan.location is None
    for broken in (
        {"status": "teleported"},
        {"occurred_at": "2025-03-03T10:00:00"},  # no timezone: ambiguous
        {"tracking_number": ""},
    ):
        with pytest.raises(ValidationError):
            CarrierScan.model_validate({**json.loads(BODY), **broken})
