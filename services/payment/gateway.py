"""The payment gateway adapter: the interface the handlers call, and the sandbox gateway.

Every call carries an idempotency key; a gateway that sees the same key again returns
the first answer and does nothing a second time. A *refusal* (card declined, capture of
an expired authorization) is an answer, not an error: it comes back as a
``GatewayResult`` with ``approved=False``. Only "no answer" (timeouts, 5xx, connection
trouble) raises :class:`GatewayError`, and only those are retried.

The sandbox (the default, and the only adapter today) behaves like a real provider and
decides by the card token (see ``docs/payment.md``):

=========================  ===============================================================
token                      outcome
=========================  ===============================================================
``tok_approved`` / other   approved
``tok_declined``           declined, code ``declined``
``tok_insufficient_funds`` declined, code ``insufficient_funds``
``tok_expired``            declined, code ``expired_card``
``tok_invalid_card``       declined, code ``invalid_card``
``tok_suspected_fraud``    declined, code ``suspected_fraud``
``tok_limit_exceeded``     declined, code ``limit_exceeded``
``tok_timeout_once``       the first call for each idempotency key times out; the retry
                           succeeds (for every operation on that authorization)
``tok_gateway_down``       every call times out
``tok_capture_expired``    approved, but the capture is refused: ``authorization_expired``
=========================  ===============================================================

Its memory (what each idempotency key was asked and answered, and the state of each
authorization) lives in a :class:`SandboxLedger`: in the service's wiring a table of the
payment service's own schema written on its *own* connection, so it survives restarts
and, like a real provider's, is not rolled back with the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from shared.runtime.keyed import KeyedLocks
from shared.schemas.common import Money
from shared.schemas.events.payment import DeclineCode

Operation = Literal["authorize", "void", "capture", "refund"]

# --- the adapter interface ------------------------------------------------------------


@dataclass(frozen=True)
class GatewayResult:
    """The gateway's answer. ``reference`` is the gateway's id of what it created."""

    approved: bool
    reference: str | None = None
    code: str | None = None  # why it was refused (a DeclineCode for authorizations)
    message: str = ""
    expires_at: datetime | None = None  # authorizations only

    def to_json(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "reference": self.reference,
            "code": self.code,
            "message": self.message,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GatewayResult:
        expires = data.get("expires_at")
        return cls(
            approved=bool(data["approved"]),
            reference=data.get("reference"),
            code=data.get("code"),
            message=data.get("message", ""),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


class GatewayError(Exception):
    """No answer from the gateway (timeout, 5xx, unreachable): safe to retry, same key."""


class GatewayTimeout(GatewayError):
    pass


class GatewayUnavailable(GatewayError):
    pass


class IdempotencyKeyReused(Exception):
    """The same key was sent with a different request: a bug on our side, never retried."""


class PaymentGateway(Protocol):
    """What the payment service needs from a provider. Every call is idempotent by key."""

    async def authorize(
        self, *, token: str, amount: Money, idempotency_key: str
    ) -> GatewayResult: ...

    async def void(
        self, *, authorization_reference: str, idempotency_key: str
    ) -> GatewayResult: ...

    async def capture(
        self, *, authorization_reference: str, amount: Money, idempotency_key: str
    ) -> GatewayResult: ...

    async def refund(
        self, *, capture_reference: str, amount: Money, idempotency_key: str
    ) -> GatewayResult: ...


# --- the sandbox ----------------------------------------------------------------------

APPROVED_TOKEN = "tok_approved"
TIMEOUT_ONCE_TOKEN = "tok_timeout_once"
GATEWAY_DOWN_TOKEN = "tok_gateway_down"
CAPTURE_EXPIRED_TOKEN = "tok_capture_expired"
DECLINE_TOKENS: dict[str, DeclineCode] = {
    "tok_declined": "declined",
    "tok_insufficient_funds": "insufficient_funds",
    "tok_expired": "expired_card",
    "tok_invalid_card": "invalid_card",
    "tok_suspected_fraud": "suspected_fraud",
    "tok_limit_exceeded": "limit_exceeded",
}
AUTHORIZATION_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class LedgerEntry:
    """What the sandbox remembers about one idempotency key."""

    key: str
    operation: Operation
    request: dict[str, Any]
    calls: int  # how many times this key was called, this one included
    result: GatewayResult | None = None  # None until a call was answered
    parent_reference: str | None = None  # the authorization or capture acted on


class SandboxLedger(Protocol):
    """The sandbox's memory. Implementations: :class:`MemoryLedger`, and
    ``services.payment.store.PostgresSandboxLedger`` (the service's own table)."""

    async def begin(
        self,
        key: str,
        operation: Operation,
        request: dict[str, Any],
        parent: str | None,
        answer: GatewayResult | None = None,
    ) -> LedgerEntry:
        """Note one more call of ``key`` (recording the request the first time, and
        ``answer`` as its answer, if given, in the same write)."""
        ...

    async def complete(self, key: str, result: GatewayResult) -> None: ...

    async def find(self, reference: str) -> LedgerEntry | None:
        """The answered entry that created ``reference``."""
        ...

    async def children(self, parent_reference: str) -> list[LedgerEntry]:
        """Answered entries that acted on ``parent_reference``."""
        ...


@dataclass
class MemoryLedger:
    """In-process memory: for unit tests. Forgets everything when the process ends."""

    entries: dict[str, LedgerEntry] = field(default_factory=dict)

    async def begin(
        self,
        key: str,
        operation: Operation,
        request: dict[str, Any],
        parent: str | None,
        answer: GatewayResult | None = None,
    ) -> LedgerEntry:
        entry = self.entries.get(key)
        if entry is None:
            entry = LedgerEntry(key, operation, request, 1, answer, parent_reference=parent)
        else:
            entry = replace(entry, calls=entry.calls + 1)
        self.entries[key] = entry
        return entry

    async def complete(self, key: str, result: GatewayResult) -> None:
        self.entries[key] = replace(self.entries[key], result=result)

    async def find(self, reference: str) -> LedgerEntry | None:
        for entry in self.entries.values():
            if entry.result is not None and entry.result.reference == reference:
                return entry
        return None

    async def children(self, parent_reference: str) -> list[LedgerEntry]:
        return [
            e
            for e in self.entries.values()
            if e.parent_reference == parent_reference and e.result is not None
        ]


def _reference(prefix: str, key: str) -> str:
    """Deterministic per key: a replayed call returns the same reference."""
    return f"sbx_{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _refused(code: str, message: str) -> GatewayResult:
    return GatewayResult(approved=False, code=code, message=message)


def _money(entry: LedgerEntry) -> Money:
    return Money(amount_minor=entry.request["amount_minor"], currency=entry.request["currency"])


class SandboxGateway:
    """A gateway that behaves like a real one, with outcomes chosen by the card token.

    Calls about one thing (an authorization and what acts on it, a capture and its
    refunds) are serialized in-process, as a real provider serializes them; calls about
    different orders run at once. (Each payment process has its own sandbox: one
    consumer, so one process, handles a given order.)
    """

    def __init__(
        self, ledger: SandboxLedger, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.ledger = ledger
        self.now = now
        self._locks = KeyedLocks()

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> GatewayResult:
        request = {"token": token, **amount.model_dump()}

        async def decide() -> GatewayResult:
            if token in DECLINE_TOKENS:
                code = DECLINE_TOKENS[token]
                return GatewayResult(
                    approved=False,
                    reference=_reference("dec", idempotency_key),
                    code=code,
                    message=f"sandbox: card {code.replace('_', ' ')}",
                )
            return GatewayResult(
                approved=True,
                reference=_reference("auth", idempotency_key),
                expires_at=self.now() + AUTHORIZATION_VALIDITY,
            )

        return await self._once(idempotency_key, "authorize", request, None, token, decide)

    async def void(self, *, authorization_reference: str, idempotency_key: str) -> GatewayResult:
        request = {"authorization_reference": authorization_reference}
        auth = await self._authorization(authorization_reference)

        async def decide() -> GatewayResult:
            if auth is None:
                return _refused("unknown_authorization", "no such authorization")
            done = await self.ledger.children(authorization_reference)
            if any(c.operation == "capture" and _ok(c) for c in done):
                return _refused("already_captured", "a captured authorization cannot be voided")
            if any(c.operation == "void" and _ok(c) for c in done):
                return _refused("already_voided", "the authorization was already voided")
            return GatewayResult(approved=True, reference=_reference("void", idempotency_key))

        token = _token(auth)
        return await self._once(
            idempotency_key, "void", request, authorization_reference, token, decide
        )

    async def capture(
        self, *, authorization_reference: str, amount: Money, idempotency_key: str
    ) -> GatewayResult:
        request = {"authorization_reference": authorization_reference, **amount.model_dump()}
        auth = await self._authorization(authorization_reference)

        async def decide() -> GatewayResult:
            if auth is None:
                return _refused("unknown_authorization", "no such authorization")
            authorized = _money(auth)
            done = await self.ledger.children(authorization_reference)
            if any(c.operation == "void" and _ok(c) for c in done):
                return _refused("authorization_voided", "the authorization was voided")
            if any(c.operation == "capture" and _ok(c) for c in done):
                return _refused("already_captured", "the authorization was already captured")
            if auth.request.get("token") == CAPTURE_EXPIRED_TOKEN:
                return _refused("authorization_expired", "sandbox: the authorization expired")
            if amount.currency != authorized.currency or amount.amount_minor > (
                authorized.amount_minor
            ):
                return _refused(
                    "amount_exceeds_authorization",
                    f"{amount.amount_minor} {amount.currency} exceeds the authorized "
                    f"{authorized.amount_minor} {authorized.currency}",
                )
            return GatewayResult(approved=True, reference=_reference("cap", idempotency_key))

        token = _token(auth)
        return await self._once(
            idempotency_key, "capture", request, authorization_reference, token, decide
        )

    async def refund(
        self, *, capture_reference: str, amount: Money, idempotency_key: str
    ) -> GatewayResult:
        request = {"capture_reference": capture_reference, **amount.model_dump()}
        capture = await self.ledger.find(capture_reference)
        if capture is not None and capture.operation != "capture":
            capture = None
        auth = (
            await self._authorization(capture.parent_reference)
            if capture is not None and capture.parent_reference
            else None
        )

        async def decide() -> GatewayResult:
            if capture is None:
                return _refused("unknown_capture", "no such capture")
            captured = _money(capture)
            done = await self.ledger.children(capture_reference)
            refunded_ok = sum(
                c.request["amount_minor"] for c in done if c.operation == "refund" and _ok(c)
            )
            if amount.currency != captured.currency:
                return _refused("currency_mismatch", f"the capture is in {captured.currency}")
            if amount.amount_minor + refunded_ok > captured.amount_minor:
                return _refused(
                    "exceeds_captured",
                    f"{amount.amount_minor} + refunded {refunded_ok} exceeds the captured "
                    f"{captured.amount_minor}",
                )
            return GatewayResult(approved=True, reference=_reference("ref", idempotency_key))

        return await self._once(
            idempotency_key, "refund", request, capture_reference, _token(auth), decide
        )

    # -- the provider's idempotency -----------------------------------------------------

    async def _authorization(self, reference: str) -> LedgerEntry | None:
        entry = await self.ledger.find(reference)
        return entry if entry is not None and entry.operation == "authorize" else None

    async def _once(
        self,
        key: str,
        operation: Operation,
        request: dict[str, Any],
        parent: str | None,
        token: str | None,
        decide: Callable[[], Awaitable[GatewayResult]],
    ) -> GatewayResult:
        # what it acts on (an authorization, a capture), or itself for an authorization
        async with self._locks.hold(parent or key):
            # A call that will be answered is decided first and noted with its answer in
            # one write: half the ledger's writes, each a commit of its own (the sandbox
            # stands in for a remote provider, so the bench should not pay much for it).
            # Only a call that may time out is noted before it is decided.
            may_time_out = token in (GATEWAY_DOWN_TOKEN, TIMEOUT_ONCE_TOKEN)
            answer = None if may_time_out else await decide()
            entry = await self.ledger.begin(key, operation, request, parent, answer)
            if entry.operation != operation or entry.request != request:
                raise IdempotencyKeyReused(
                    f"key {key!r} was first used for {entry.operation} {entry.request}"
                )
            if entry.result is not None:
                return entry.result  # ours, or on a repeat the first answer: no second effect
            if token == GATEWAY_DOWN_TOKEN:
                raise GatewayTimeout(f"sandbox: {operation} timed out ({token})")
            if token == TIMEOUT_ONCE_TOKEN and entry.calls == 1:
                raise GatewayTimeout(f"sandbox: {operation} timed out (first call for this key)")
            result = answer or await decide()
            await self.ledger.complete(key, result)
            return result


def _ok(entry: LedgerEntry) -> bool:
    return entry.result is not None and entry.result.approved


def _token(auth: LedgerEntry | None) -> str | None:
    return auth.request.get("token") if auth is not None else None
