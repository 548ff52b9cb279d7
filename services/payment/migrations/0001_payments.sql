-- The payment service's own tables. One payment per order; the invariants the rules in
-- domain.py keep are enforced here too, so no code path (or hand-written SQL) can break
-- them: one authorization and one capture per order, no capture of a voided
-- authorization, no void of a captured one, refunds never more than the capture.

CREATE TABLE payments (
    order_id                text PRIMARY KEY,
    payment_id              text NOT NULL UNIQUE,
    status                  text NOT NULL CHECK (status IN (
                                'new', 'authorized', 'declined', 'authorization_failed',
                                'cancelled', 'voided', 'captured', 'capture_failed',
                                'refunded')),
    amount_minor            bigint CHECK (amount_minor >= 0),
    currency                text CHECK (currency ~ '^[A-Z]{3}$'),
    decline_code            text,
    last_error              text,
    -- a dispatch seen before the authorization: captured as soon as it is authorized
    pending_capture_event   text,
    pending_shipment_id     text,
    order_cancelled_at      timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Approved authorizations only (declines are in payments and gateway_calls).
CREATE TABLE authorizations (
    authorization_id   text PRIMARY KEY,
    order_id           text NOT NULL UNIQUE REFERENCES payments (order_id),  -- never two
    amount_minor       bigint NOT NULL CHECK (amount_minor >= 0),
    currency           text NOT NULL,
    gateway_reference  text NOT NULL UNIQUE,
    expires_at         timestamptz,
    authorized_at      timestamptz NOT NULL DEFAULT now(),
    voided_at          timestamptz,
    void_reference     text,
    CHECK ((voided_at IS NULL) = (void_reference IS NULL))
);

CREATE TABLE captures (
    capture_id         text PRIMARY KEY,
    order_id           text NOT NULL UNIQUE REFERENCES payments (order_id),  -- never two
    authorization_id   text NOT NULL UNIQUE REFERENCES authorizations (authorization_id),
    amount_minor       bigint NOT NULL CHECK (amount_minor >= 0),
    currency           text NOT NULL,
    -- kept by the trigger on refunds; the CHECK is the "refunds <= capture" invariant
    refunded_minor     bigint NOT NULL DEFAULT 0
                       CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    gateway_reference  text NOT NULL UNIQUE,
    shipment_id        text,
    captured_at        timestamptz NOT NULL DEFAULT now()
);

-- Every refund request by its requester-chosen refund_id: a repeat is a no-op. Only
-- status 'refunded' moved money; 'refused' (by our rules) and 'failed' (by the gateway)
-- are kept so the same refund_id is not tried again.
CREATE TABLE refunds (
    order_id           text NOT NULL,
    refund_id          text NOT NULL,
    status             text NOT NULL CHECK (status IN ('refunded', 'refused', 'failed')),
    amount_minor       bigint NOT NULL CHECK (amount_minor >= 0),
    currency           text NOT NULL,
    capture_id         text REFERENCES captures (capture_id),
    gateway_reference  text,
    error              text,
    reason             text NOT NULL DEFAULT '',
    return_id          text,
    requested_by       text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, refund_id),
    CHECK (status <> 'refunded'
           OR (capture_id IS NOT NULL AND gateway_reference IS NOT NULL AND amount_minor > 0))
);

-- refunds total <= captured: each refund adds to captures.refunded_minor, whose CHECK
-- refuses the excess. An increment (not a re-computed SUM) stays right when two
-- transactions refund at once: the second UPDATE waits for the first and re-reads the row.
CREATE FUNCTION refunds_add_to_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE captures SET refunded_minor = refunded_minor + NEW.amount_minor
     WHERE capture_id = NEW.capture_id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER refunds_add_to_capture AFTER INSERT ON refunds
    FOR EACH ROW WHEN (NEW.status = 'refunded') EXECUTE FUNCTION refunds_add_to_capture();

-- The counter above is only right if refunds are never changed afterwards.
CREATE FUNCTION refunds_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refunds are immutable (order %, refund %)', OLD.order_id, OLD.refund_id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER refunds_are_immutable BEFORE UPDATE OR DELETE ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_are_immutable();

-- A voided authorization is never captured, a captured one never voided.
CREATE FUNCTION captures_need_live_authorization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM authorizations
                WHERE authorization_id = NEW.authorization_id AND voided_at IS NOT NULL) THEN
        RAISE EXCEPTION 'authorization % is voided and cannot be captured', NEW.authorization_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER captures_need_live_authorization BEFORE INSERT ON captures
    FOR EACH ROW EXECUTE FUNCTION captures_need_live_authorization();

CREATE FUNCTION voids_need_uncaptured_authorization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM captures WHERE authorization_id = NEW.authorization_id) THEN
        RAISE EXCEPTION 'authorization % is captured and cannot be voided', NEW.authorization_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER voids_need_uncaptured_authorization BEFORE UPDATE OF voided_at ON authorizations
    FOR EACH ROW WHEN (OLD.voided_at IS NULL AND NEW.voided_at IS NOT NULL)
    EXECUTE FUNCTION voids_need_uncaptured_authorization();

-- Every gateway call and its result, one row per attempt, written in the handler's
-- transaction: what we asked, with which idempotency key, and what came back.
CREATE TABLE gateway_calls (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('authorize', 'void', 'capture', 'refund')),
    idempotency_key  text NOT NULL,
    attempt          integer NOT NULL CHECK (attempt >= 1),
    event_id         text NOT NULL,  -- the message that caused the call
    request          jsonb NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('approved', 'refused', 'error')),
    response         jsonb,
    error            text,
    duration_ms      double precision NOT NULL,
    called_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (idempotency_key, attempt)
);
CREATE INDEX gateway_calls_order ON gateway_calls (order_id, id);

-- The sandbox gateway's memory: the provider's side, not ours. Written on the sandbox's
-- own connection (never in a handler's transaction), so, like a real provider, it
-- remembers a call even when the caller's transaction rolls back, and a repeated
-- idempotency key gets the first answer with no second effect, across restarts.
CREATE TABLE sandbox_gateway_ledger (
    idempotency_key   text PRIMARY KEY,
    operation         text NOT NULL,
    request           jsonb NOT NULL,
    parent_reference  text,           -- the authorization or capture acted on
    calls             integer NOT NULL DEFAULT 1,
    result            jsonb,          -- NULL until a call was answered
    reference         text UNIQUE,    -- what the answer created
    created_at        timestamptz NOT NULL DEFAULT now(),
    answered_at       timestamptz
);
CREATE INDEX sandbox_gateway_ledger_parent ON sandbox_gateway_ledger (parent_reference)
    WHERE result IS NOT NULL;
