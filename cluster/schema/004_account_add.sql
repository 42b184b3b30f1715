-- Tsunagu cluster schema, version 4: `user add --pg` as one locked statement.
-- Up to version 3 the CLI read the routes and the removal time in one
-- transaction and inserted the account in another, so an `agent --pg enroll`
-- committing in between could enrol a route around the new ID (and each
-- check passed on its own). account_add() checks and inserts at once, with
-- agent_routes locked in SHARE mode: that conflicts with agent_enroll()'s
-- SHARE ROW EXCLUSIVE, so an add and an enrolment wait for each other and
-- the second sees what the first committed, while two adds do not wait.

-- Adds the account unless its ID is inside an enrolled route (outcome
-- 'agent_route', with the domain or the longest number prefix, as
-- PgAgentStore::route_of names it), was removed after p_quarantined_after
-- (unix seconds; NULL: no quarantine, e.g. --reuse-removed-id; outcome
-- 'quarantined') or is taken ('exists'). Else 'added'. The checks run in
-- that order, as the LMDB store's do. The account's generation is the
-- current account epoch, as PgAccountStore::create writes it.
CREATE FUNCTION account_add(p_user_id text, p_password_hash text, p_display_name text, p_phone text,
                            p_category text, p_publish boolean, p_services bigint, p_static_address text,
                            p_created_at bigint, p_presence_visibility bigint, p_addresses_shown boolean,
                            p_contacts text[], p_verified boolean, p_admin boolean, p_quarantined_after bigint,
                            OUT outcome text, OUT route text)
LANGUAGE plpgsql AS $$
DECLARE
  at_sign integer := position('@' in p_user_id);
BEGIN
  LOCK TABLE agent_routes IN SHARE MODE;
  IF at_sign > 0 THEN
    SELECT substr(r.route, 3) INTO route FROM agent_routes r WHERE r.route = 'd:' || substr(p_user_id, at_sign + 1);
  ELSIF starts_with(p_user_id, '+') THEN
    -- Every prefix an enrolment could hold (2 to 32 bytes), so the primary key answers.
    SELECT substr(r.route, 3) INTO route FROM agent_routes r
      WHERE r.route IN (SELECT 'p:' || left(p_user_id, n) FROM generate_series(2, least(length(p_user_id), 32)) n)
      ORDER BY length(r.route) DESC LIMIT 1;
  END IF;
  IF route IS NOT NULL THEN
    outcome := 'agent_route'; RETURN;
  END IF;
  IF p_quarantined_after IS NOT NULL AND EXISTS (
      SELECT 1 FROM removed_ids d WHERE d.user_id = p_user_id AND d.removed_at > p_quarantined_after) THEN
    outcome := 'quarantined'; RETURN;
  END IF;
  INSERT INTO accounts (user_id, password_hash, display_name, phone, category, publish, services, static_address,
                        created_at, presence_visibility, addresses_shown, contacts, verified, admin, generation)
    SELECT p_user_id, p_password_hash, p_display_name, p_phone, p_category, p_publish, p_services, p_static_address,
           p_created_at, p_presence_visibility, p_addresses_shown, p_contacts, p_verified, p_admin, e.epoch
    FROM account_epoch e
    ON CONFLICT (user_id) DO NOTHING;
  outcome := CASE WHEN FOUND THEN 'added' ELSE 'exists' END;
END
$$;
