-- Tsunagu cluster schema, version 1: the durable state that nodes share
-- (docs/cluster.md has the column choices). Applied by
-- `tsunagu-rendezvous cluster migrate` inside one transaction.

-- rendezvous::Account, one row per user ID; columns, not the LMDB record, so
-- operators can query them and later versions can add columns.
CREATE TABLE accounts (
  user_id text COLLATE "C" PRIMARY KEY,  -- byte order, as LMDB lists them
  password_hash text NOT NULL,          -- SCRAM credentials (security::hash_password), never a password
  display_name text NOT NULL DEFAULT '',
  phone text NOT NULL DEFAULT '',
  category text NOT NULL DEFAULT '',
  publish boolean NOT NULL DEFAULT false,
  services bigint NOT NULL DEFAULT 0,   -- u32 proto::service_flag bits
  static_address text,                  -- "1.2.3.4:5" / "[::1]:5"; NULL: none
  created_at bigint NOT NULL,           -- Unix seconds
  generation bigint NOT NULL,           -- account epoch at creation or last password change
  presence_visibility bigint NOT NULL DEFAULT 0,
  addresses_shown boolean NOT NULL DEFAULT false,
  contacts text[] NOT NULL DEFAULT '{}',
  verified boolean NOT NULL DEFAULT false,
  admin boolean NOT NULL DEFAULT false
);

-- The account epoch: one row, moved on by every removal and password change.
CREATE TABLE account_epoch (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  epoch bigint NOT NULL
);
INSERT INTO account_epoch (epoch) VALUES (0);

-- When each removed user ID was last removed (quarantine of removed IDs).
CREATE TABLE removed_ids (
  user_id text PRIMARY KEY,
  removed_at bigint NOT NULL
);

-- rendezvous::LoginRecord, the last one per user.
CREATE TABLE logins (
  user_id text PRIMARY KEY,
  time bigint NOT NULL,
  reported text[] NOT NULL DEFAULT '{}',
  observed text
);

-- Directory and profile rows beyond the account (search keys, the profile
-- page's text); the node's directory search reads accounts' published rows.
CREATE TABLE directory_profiles (
  user_id text PRIMARY KEY REFERENCES accounts (user_id) ON DELETE CASCADE,
  search_name text NOT NULL DEFAULT '',  -- normalised display name
  profile jsonb NOT NULL DEFAULT '{}',
  updated_at bigint NOT NULL
);
CREATE INDEX directory_profiles_search_name ON directory_profiles (search_name);

-- rendezvous::AgentEnrollment and its routes: a domain or +prefix belongs to one agent.
CREATE TABLE agents (
  name text PRIMARY KEY,
  enrolled_at bigint NOT NULL
);
CREATE TABLE agent_routes (
  route text PRIMARY KEY,               -- "d:<domain>" or "p:<prefix>", as in LMDB
  agent text NOT NULL REFERENCES agents (name) ON DELETE CASCADE
);
CREATE INDEX agent_routes_agent ON agent_routes (agent);

-- Voicemail: the header row, and the recording in its own table so listing
-- messages never reads the audio.
CREATE TABLE voicemail (
  id bigserial PRIMARY KEY,
  recipient text NOT NULL,
  sender text NOT NULL,
  time bigint NOT NULL,
  size bigint NOT NULL,
  heard boolean NOT NULL DEFAULT false
);
CREATE INDEX voicemail_recipient ON voicemail (recipient, id);
CREATE TABLE voicemail_data (
  id bigint PRIMARY KEY REFERENCES voicemail (id) ON DELETE CASCADE,
  data bytea NOT NULL
);

-- The access card ledger (rendezvous::CardAccount, CardEvent).
CREATE TABLE card_accounts (
  serial bigint PRIMARY KEY CHECK (serial > 0),
  card_id text NOT NULL,
  password_hash text NOT NULL DEFAULT '',
  units_issued bigint NOT NULL CHECK (units_issued >= 0),
  units_left bigint NOT NULL CHECK (units_left >= 0),
  issued_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  revoked boolean NOT NULL DEFAULT false,
  revoked_at bigint NOT NULL DEFAULT 0,
  events bigint NOT NULL DEFAULT 0
);
CREATE TABLE card_history (
  serial bigint NOT NULL REFERENCES card_accounts (serial),
  sequence bigint NOT NULL,
  kind smallint NOT NULL,               -- CardEventKind: 1 issued, 2 debit, 3 top_up, 4 revoked
  time bigint NOT NULL,
  units bigint NOT NULL,
  units_left bigint NOT NULL,
  note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 255),
  PRIMARY KEY (serial, sequence)
);

-- A debit or top-up in one statement, with the card's row locked, so two
-- nodes debiting one card at once both see the other's units. Returns the
-- outcome by name (rendezvous::ledger_outcome_name), the units moved and the
-- units left.
CREATE FUNCTION card_move_units(p_serial bigint, p_units bigint, p_kind smallint, p_time bigint, p_note text,
                                OUT outcome text, OUT moved bigint, OUT left_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
  card card_accounts%ROWTYPE;
BEGIN
  SELECT * INTO card FROM card_accounts WHERE serial = p_serial FOR UPDATE;
  IF NOT FOUND THEN
    outcome := 'unknown_card'; moved := 0; left_after := 0; RETURN;
  END IF;
  IF card.revoked THEN
    outcome := 'revoked'; moved := 0; left_after := card.units_left; RETURN;
  END IF;
  IF p_kind = 2 THEN
    IF card.units_left = 0 THEN
      outcome := 'no_units'; moved := 0; left_after := 0; RETURN;
    END IF;
    moved := LEAST(card.units_left, p_units);
    outcome := CASE WHEN moved < p_units THEN 'exhausted' ELSE 'done' END;
    left_after := card.units_left - moved;
  ELSE
    moved := p_units;
    outcome := 'done';
    left_after := card.units_left + moved;
  END IF;
  UPDATE card_accounts SET units_left = left_after, events = events + 1 WHERE serial = p_serial;
  INSERT INTO card_history (serial, sequence, kind, time, units, units_left, note)
    VALUES (p_serial, card.events, p_kind, p_time, moved, left_after, left(p_note, 255));
END
$$;
