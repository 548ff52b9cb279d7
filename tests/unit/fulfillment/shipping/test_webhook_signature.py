"""The webhook's signature (webhook.py): Standard Webhooks, ``v1`` HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{raw body}``, checked against a timestamp tolerance."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from services.fulfillment.shipping.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CarrierScan,
    Delivery,
    Refused,
    Verifier,
    sign,
    signed_headers,
    signing_key,
)

SECRET = "whsec_" + base64.b64encode(b"our shared secret, 32 bytes long").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the secret before the rotation!!").decode()
NOW = 1_741_000_000
TOLERANCE_S = 300
BODY = json.dumps(
    {
        "tracking_number": "SWP0123",
        "carrier_event_id": "evt-1",
        "status": "delayed",
        "occurred_at": "2025-03-03T10:00:00Z",
    }
).encode()


def verifier(now: float = NOW) -> Verifier:
    return Verifier(SECRET, tolerance_s=TOLERANCE_S, clock=lambda: now)


def accept(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> Delivery:
    checking = verifier(now)
    delivery = checking.check_headers(headers)
    checking.check_body(delivery, body)
    return delivery


def test_the_published_test_vector() -> None:
    """Standard Webhooks' reference vector: what any carrier's library computes."""
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_signed_delivery_is_accepted() -> None:
    headers = signed_headers(BODY, SECRET, msg_id="msg_1", timestamp=NOW)
    assert headers == {
        ID_HEADER: "msg_1",
        TIMESTAMP_HEADER: str(NOW),
        SIGNATURE_HEADER: sign(SECRET, "msg_1", NOW, BODY),
    }
    delivery = accept(headers)
    assert (delivery.msg_id, delivery.timestamp) == ("msg_1", NOW)
    assert delivery.signed_at.timestamp() == NOW


def test_a_rotated_secret_two_signatures_either_order() -> None:
    for secrets in ((OLD_SECRET, SECRET), (SECRET, OLD_SECRET)):
        headers = signed_headers(BODY, *secrets, timestamp=NOW)
        assert len(headers[SIGNATURE_HEADER].split(" ")) == 2
        accept(headers)
    with pytest.raises(Refused, match="no webhook-signature entry"):
        accept(signed_headers(BODY, OLD_SECRET, timestamp=NOW))


@pytest.mark.parametrize("skew_s", [-TOLERANCE_S, -1, 0, 1, TOLERANCE_S], ids=lambda s: f"{s:+d}s")
def test_timestamps_within_the_tolerance(skew_s: int) -> None:
    accept(signed_headers(BODY, SECRET, timestamp=NOW + skew_s))


@pytest.mark.parametrize(
    "timestamp",
    [
        str(NOW - TOLERANCE_S - 1),  # too old: a replay
        str(NOW + TOLERANCE_S + 1),  # from the future
        "4070908800",  # 2099
        "0",
    ],
)
def test_timestamps_out_of_tolerance_are_refused(timestamp: str) -> None:
    headers = signed_headers(BODY, SECRET, timestamp=int(timestamp))
    with pytest.raises(Refused, match="from now"):
        verifier().check_headers(headers)


@pytest.mark.parametrize(
    "change",
    [
        {ID_HEADER: None},
        {TIMESTAMP_HEADER: None},
        {SIGNATURE_HEADER: None},
        {SIGNATURE_HEADER: ""},
        {TIMESTAMP_HEADER: f"{NOW}.0"},  # integer seconds only
        {TIMESTAMP_HEADER: "-1"},
        {TIMESTAMP_HEADER: "nan"},
        {TIMESTAMP_HEADER: " 1741000000"},
        {ID_HEADER: "msg.1"},  # "." delimits the signed content
        {ID_HEADER: "x" * 256},
    ],
    ids=repr,
)
def test_malformed_headers_are_refused(change: dict[str, str | None]) -> None:
    headers: dict[str, str | None] = {**signed_headers(BODY, SECRET, timestamp=NOW), **change}
    with pytest.raises(Refused):
        verifier().check_headers(headers)


@pytest.mark.parametrize(
    "signature",
    [
        "v1,",
        "v1,deadbeef",
        "v1,!!!not base64!!!",
        "v1a," + sign(SECRET, "msg_1", NOW, BODY).removeprefix("v1,"),  # not our scheme
        sign(SECRET, "msg_1", NOW, BODY).removeprefix("v1,"),  # no version
        sign(SECRET, "msg_2", NOW, BODY),  # another message's
        sign(SECRET, "msg_1", NOW - 1, BODY),  # another time's
        sign(SECRET, "msg_1", NOW, BODY + b" "),  # the same JSON, re-serialized
        sign(OLD_SECRET, "msg_1", NOW, BODY),
        "sha256=" + "0" * 64,  # the old X-Conveyor-Signature scheme
    ],
)
def test_wrong_signatures_fail(signature: str) -> None:
    headers = {ID_HEADER: "msg_1", TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: signature}
    with pytest.raises(Refused):
        accept(headers)


def test_a_tampered_body_fails() -> None:
    headers = signed_headers(BODY, SECRET, timestamp=NOW)
    with pytest.raises(Refused):
        accept(headers, BODY.replace(b"delayed", b"delivered"))


def test_secrets() -> None:
    assert signing_key(SECRET) == b"our shared secret, 32 bytes long"
    assert signing_key(SECRET.removeprefix("whsec_")) == signing_key(SECRET), "prefix optional"
    unpadded = "whsec_" + base64.b64encode(b"x" * 25).decode().rstrip("=")
    assert signing_key(unpadded) == b"x" * 25
    for bad in (
        "conveyor-dev-webhook-secret",  # not base64
        "whsec_" + base64.b64encode(b"too short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "whsec_",
    ):
        with pytest.raises(ValueError, match="webhook secret"):
            signing_key(bad)


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
