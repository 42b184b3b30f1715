-- Tsunagu cluster schema, version 6: access cards served by the node
-- (`run --pg`: card_status, card_password, calls on a card) and written by
-- `card issue|topup|revoke --pg`. Version 1 had the ledger's accounts, its
-- history and card_move_units(); the node also needs what the LMDB ledger
-- (rendezvous/card_ledger.hpp) has beside them: when the holder set the
-- card's password, the revocation and the password change as locked
-- one-statement events, and serials handed out once.

-- When the holder last set the card's password; 0: the printed one is in force.
ALTER TABLE card_accounts ADD COLUMN password_set_at bigint NOT NULL DEFAULT 0;
-- card_history.kind 5: password_set (rendezvous::CardEventKind).

-- The next serial `card issue --pg` hands out: one row, moved on by
-- card_take_serials() with its row locked, so two issues never share a
-- serial and a serial is never reused. Starts past the cards already here.
CREATE TABLE card_serials (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  next_serial bigint NOT NULL CHECK (next_serial > 0)
);
INSERT INTO card_serials (next_serial) SELECT coalesce(max(serial), 0) + 1 FROM card_accounts;

CREATE FUNCTION card_take_serials(p_count bigint, OUT first_serial bigint)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_count < 1 THEN
    RAISE EXCEPTION 'card_take_serials: count % < 1', p_count;
  END IF;
  UPDATE card_serials SET next_serial = next_serial + p_count RETURNING next_serial - p_count INTO first_serial;
END
$$;

-- Revokes a card with its row locked: 'done', 'already' (revoked before) or
-- 'unknown_card', and the units it has left.
CREATE FUNCTION card_revoke(p_serial bigint, p_time bigint, p_note text, OUT outcome text, OUT left_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
  card card_accounts%ROWTYPE;
BEGIN
  SELECT * INTO card FROM card_accounts WHERE serial = p_serial FOR UPDATE;
  IF NOT FOUND THEN
    outcome := 'unknown_card'; left_after := 0; RETURN;
  END IF;
  left_after := card.units_left;
  IF card.revoked THEN
    outcome := 'already'; RETURN;
  END IF;
  UPDATE card_accounts SET revoked = true, revoked_at = p_time, events = events + 1 WHERE serial = p_serial;
  INSERT INTO card_history (serial, sequence, kind, time, units, units_left, note)
    VALUES (p_serial, card.events, 4, p_time, 0, left_after, left(p_note, 255));
  outcome := 'done';
END
$$;

-- The holder's password replaces the card's (seed 002 [0030]), with the row
-- locked: 'done', 'revoked' (a revoked card keeps its password) or
-- 'unknown_card', and the units it has left.
CREATE FUNCTION card_set_password(p_serial bigint, p_hash text, p_time bigint, p_note text, OUT outcome text,
                                  OUT left_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
  card card_accounts%ROWTYPE;
BEGIN
  SELECT * INTO card FROM card_accounts WHERE serial = p_serial FOR UPDATE;
  IF NOT FOUND THEN
    outcome := 'unknown_card'; left_after := 0; RETURN;
  END IF;
  left_after := card.units_left;
  IF card.revoked THEN
    outcome := 'revoked'; RETURN;
  END IF;
  UPDATE card_accounts SET password_hash = p_hash, password_set_at = p_time, events = events + 1
    WHERE serial = p_serial;
  INSERT INTO card_history (serial, sequence, kind, time, units, units_left, note)
    VALUES (p_serial, card.events, 5, p_time, 0, left_after, left(p_note, 255));
  outcome := 'done';
END
$$;

-- The revocation list `card publish --pg` signs.
CREATE INDEX card_accounts_revoked ON card_accounts (serial) WHERE revoked;
