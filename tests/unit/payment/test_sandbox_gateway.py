"""The sandbox gateway (services/payment/gateway.py): outcomes by token, memory per
idempotency key, and a real provider's refusals. In-process ledger; no I/O."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.payment.gateway import (
    AUTHORIZATION_VALIDITY,
    DECLINE_TOKENS,
    GatewayResult,
    GatewayTimeout,
    IdempotencyKeyReused,
    LedgerEntry,
    MemoryLedger,
    SandboxGateway,
)
from shared.schemas.common import Money
from shared.schemas.events.payment import DeclineCode

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def gateway(ledger: MemoryLedger) -> SandboxGateway:
    return SandboxGateway(ledger, now=lambda: NOW)


async def authorized(gateway: SandboxGateway, token: str = "tok_approved") -> str:
    result = await gateway.authorize(token=token, amount=eur(5000), idempotency_key=f"a:{token}")
    assert result.approved and result.reference
    return result.reference


async def captured(gateway: SandboxGateway, token: str = "tok_approved") -> str:
    auth = await authorized(gateway, token)
    result = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c"
    )
    assert result.approved and result.reference
    return result.reference


# --- authorization by token ---


@pytest.mark.parametrize("token", ["tok_approved", "tok_visa_4242", "anything"])
async def test_approved_tokens(gateway: SandboxGateway, token: str) -> None:
    result = await gateway.authorize(token=token, amount=eur(5000), idempotency_key="k1")
    assert result.approved
    assert result.reference and result.reference.startswith("sbx_auth_")
    assert result.expires_at == NOW + AUTHORIZATION_VALIDITY
    assert result.code is None


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_declined", "declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_expired", "expired_card"),
        ("tok_invalid_card", "invalid_card"),
        ("tok_suspected_fraud", "suspected_fraud"),
        ("tok_limit_exceeded", "limit_exceeded"),
    ],
)
async def test_declining_tokens(gateway: SandboxGateway, token: str, code: DeclineCode) -> None:
    result = await gateway.authorize(token=token, amount=eur(5000), idempotency_key="k1")
    assert not result.approved
    assert result.code == code
    assert result.message
    assert DECLINE_TOKENS[token] == code


async def test_timeout_once_fails_the_first_call_per_key_then_succeeds(
    gateway: SandboxGateway, ledger: MemoryLedger
) -> None:
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="k1")
    retry = await gateway.authorize(
        token="tok_timeout_once", amount=eur(5000), idempotency_key="k1"
    )
    assert retry.approved
    assert ledger.entries["k1"].calls == 2
    # another key (another order or operation) times out once again
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="k2")


async def test_timeout_once_applies_to_every_operation_on_that_authorization(
    gateway: SandboxGateway,
) -> None:
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="a")
    auth = await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="a")
    assert auth.reference
    with pytest.raises(GatewayTimeout):
        await gateway.capture(
            authorization_reference=auth.reference, amount=eur(5000), idempotency_key="c"
        )
    capture = await gateway.capture(
        authorization_reference=auth.reference, amount=eur(5000), idempotency_key="c"
    )
    assert capture.approved


async def test_gateway_down_never_answers(gateway: SandboxGateway) -> None:
    for _ in range(3):
        with pytest.raises(GatewayTimeout):
            await gateway.authorize(
                token="tok_gateway_down", amount=eur(5000), idempotency_key="k1"
            )


# --- idempotency ---


async def test_a_repeated_key_returns_the_first_answer_without_a_second_effect(
    gateway: SandboxGateway, ledger: MemoryLedger
) -> None:
    first = await gateway.authorize(token="tok_approved", amount=eur(5000), idempotency_key="k1")
    again = await gateway.authorize(token="tok_approved", amount=eur(5000), idempotency_key="k1")
    assert again == first
    assert len(ledger.entries) == 1
    other = await gateway.authorize(token="tok_approved", amount=eur(5000), idempotency_key="k2")
    assert other.reference != first.reference


async def test_a_repeated_capture_key_captures_once(gateway: SandboxGateway) -> None:
    auth = await authorized(gateway)
    first = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c1"
    )
    again = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c1"
    )
    assert again == first and first.approved
    # a new key for the same authorization is refused: it is captured already
    other = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c2"
    )
    assert not other.approved and other.code == "already_captured"


async def test_a_key_reused_for_another_request_is_a_bug(gateway: SandboxGateway) -> None:
    await gateway.authorize(token="tok_approved", amount=eur(5000), idempotency_key="k1")
    with pytest.raises(IdempotencyKeyReused):
        await gateway.authorize(token="tok_approved", amount=eur(4999), idempotency_key="k1")


async def test_memory_is_the_ledger(ledger: MemoryLedger) -> None:
    """A new gateway over the same ledger (a restart) remembers what the first answered."""
    first = await SandboxGateway(ledger).authorize(
        token="tok_approved", amount=eur(5000), idempotency_key="k1"
    )
    later = SandboxGateway(ledger, now=lambda: NOW + timedelta(days=1))
    assert (
        await later.authorize(token="tok_approved", amount=eur(5000), idempotency_key="k1") == first
    )


def test_results_survive_a_round_trip_through_json() -> None:
    result = GatewayResult(True, "sbx_auth_1", None, "", NOW)
    assert GatewayResult.from_json(result.to_json()) == result
    refused = GatewayResult(False, None, "declined", "no")
    assert GatewayResult.from_json(refused.to_json()) == refused


# --- a provider's rules ---


async def test_void_releases_an_authorization_once(gateway: SandboxGateway) -> None:
    auth = await authorized(gateway)
    void = await gateway.void(authorization_reference=auth, idempotency_key="v1")
    assert void.approved and void.reference and void.reference.startswith("sbx_void_")
    twice = await gateway.void(authorization_reference=auth, idempotency_key="v2")
    assert not twice.approved and twice.code == "already_voided"
    capture = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c1"
    )
    assert not capture.approved and capture.code == "authorization_voided"


async def test_a_captured_authorization_cannot_be_voided(gateway: SandboxGateway) -> None:
    await captured(gateway)
    auth = await authorized(gateway)  # the same key: the same authorization
    void = await gateway.void(authorization_reference=auth, idempotency_key="v1")
    assert not void.approved and void.code == "already_captured"


async def test_capture_expired_token_is_authorized_but_not_captured(
    gateway: SandboxGateway,
) -> None:
    auth = await authorized(gateway, "tok_capture_expired")
    result = await gateway.capture(
        authorization_reference=auth, amount=eur(5000), idempotency_key="c1"
    )
    assert not result.approved and result.code == "authorization_expired"


async def test_capture_cannot_exceed_the_authorization(gateway: SandboxGateway) -> None:
    auth = await authorized(gateway)
    result = await gateway.capture(
        authorization_reference=auth, amount=eur(5001), idempotency_key="c1"
    )
    assert not result.approved and result.code == "amount_exceeds_authorization"


async def test_unknown_references_are_refused(gateway: SandboxGateway) -> None:
    void = await gateway.void(authorization_reference="nope", idempotency_key="v")
    capture = await gateway.capture(
        authorization_reference="nope", amount=eur(1), idempotency_key="c"
    )
    refund = await gateway.refund(capture_reference="nope", amount=eur(1), idempotency_key="r")
    assert [void.code, capture.code, refund.code] == [
        "unknown_authorization",
        "unknown_authorization",
        "unknown_capture",
    ]


async def test_refunds_add_up_to_at_most_the_capture(gateway: SandboxGateway) -> None:
    cap = await captured(gateway)
    first = await gateway.refund(capture_reference=cap, amount=eur(3000), idempotency_key="r1")
    assert first.approved and first.reference and first.reference.startswith("sbx_ref_")
    too_much = await gateway.refund(capture_reference=cap, amount=eur(2001), idempotency_key="r2")
    assert not too_much.approved and too_much.code == "exceeds_captured"
    rest = await gateway.refund(capture_reference=cap, amount=eur(2000), idempotency_key="r3")
    assert rest.approved
    usd = Money(amount_minor=1, currency="USD")
    other = await gateway.refund(capture_reference=cap, amount=usd, idempotency_key="r4")
    assert not other.approved and other.code == "currency_mismatch"


class CountingLedger(MemoryLedger):
    """Counts the ledger's writes: each is a commit of its own in the service's ledger."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def begin(self, *args: object, **kwargs: object) -> LedgerEntry:
        self.writes += 1
        return await super().begin(*args, **kwargs)  # type: ignore[arg-type]

    async def complete(self, key: str, result: GatewayResult) -> None:
        self.writes += 1
        await super().complete(key, result)


async def test_an_answered_call_is_noted_with_its_answer_in_one_write() -> None:
    ledger = CountingLedger()
    gateway = SandboxGateway(ledger, now=lambda: NOW)
    auth = await authorized(gateway)
    await gateway.capture(authorization_reference=auth, amount=eur(5000), idempotency_key="c")
    assert ledger.writes == 2
    assert all(entry.result is not None for entry in ledger.entries.values())


async def test_a_call_that_timed_out_is_answered_by_its_retry() -> None:
    ledger = CountingLedger()
    gateway = SandboxGateway(ledger, now=lambda: NOW)
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="k")
    assert ledger.entries["k"].result is None, "noted, not answered"
    retry = await gateway.authorize(token="tok_timeout_once", amount=eur(5000), idempotency_key="k")
    assert retry.approved and ledger.entries["k"].result == retry
    assert ledger.writes == 3, "the timed-out call, the retry, its answer"


# --- calls at once ---


class SlowLedger(MemoryLedger):
    """Yields to the event loop on every read and write, as a remote ledger would."""

    async def begin(self, *args: Any, **kwargs: Any) -> LedgerEntry:
        await asyncio.sleep(0)
        return await super().begin(*args, **kwargs)

    async def children(self, parent_reference: str) -> list[LedgerEntry]:
        await asyncio.sleep(0)
        return await super().children(parent_reference)


async def test_a_capture_and_a_void_of_one_authorization_at_once_do_not_both_succeed() -> None:
    gateway = SandboxGateway(SlowLedger(), now=lambda: NOW)
    auth = await authorized(gateway)
    capture, void = await asyncio.gather(
        gateway.capture(authorization_reference=auth, amount=eur(5000), idempotency_key="c"),
        gateway.void(authorization_reference=auth, idempotency_key="v"),
    )
    assert [capture.approved, void.approved].count(True) == 1
    assert (capture.code or void.code) in {"already_captured", "authorization_voided"}


async def test_calls_about_different_authorizations_are_in_flight_at_once() -> None:
    ledger = SlowLedger()
    gateway = SandboxGateway(ledger, now=lambda: NOW)
    first, second = await authorized(gateway, "tok_approved"), await authorized(gateway, "tok_x")
    both_asked = asyncio.Event()
    asked: set[str] = set()
    children = ledger.children

    async def waits_for_both(parent_reference: str) -> list[LedgerEntry]:
        asked.add(parent_reference)
        if len(asked) == 2:
            both_asked.set()
        await both_asked.wait()  # one call at a time would never get here for both
        return await children(parent_reference)

    ledger.children = waits_for_both  # type: ignore[method-assign]
    results = await asyncio.wait_for(
        asyncio.gather(
            gateway.capture(authorization_reference=first, amount=eur(5000), idempotency_key="1"),
            gateway.capture(authorization_reference=second, amount=eur(5000), idempotency_key="2"),
        ),
        5.0,
    )
    assert all(r.approved for r in results)
