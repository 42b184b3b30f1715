-- Tsunagu cluster schema, version 3: LAN agents' enrolments used by the node
-- (`run --pg`) and by `agent --pg CONNINFO enroll|list|remove`.
-- Version 1 made the tables; this one makes an enrolment one statement (the
-- stores write each operation as one statement, so a group-commit turn
-- retried without a refused statement repeats nothing half-done) and checks
-- the form of the routes the node reads.

ALTER TABLE agent_routes
  ADD CONSTRAINT agent_routes_form CHECK (route ~ '^(d:[^@[:space:]]{1,253}|p:\+[0-9-]{1,31})$');

-- Enrols agent p_name for p_routes ("d:<domain>", "p:<prefix>"), replacing
-- its earlier routes, unless a route belongs to another agent (outcome
-- 'route_taken', with the route and its owner) or accounts already use a
-- route, whose IDs would then belong to the agent (outcome 'accounts_inside',
-- with the route and up to 21 of those IDs in byte order). Else 'enrolled'.
-- The routes table is locked for the statement so two enrolments of one
-- route at once cannot both pass the check.
CREATE FUNCTION agent_enroll(p_name text, p_enrolled_at bigint, p_routes text[],
                             OUT outcome text, OUT route text, OUT owner text, OUT ids text[])
LANGUAGE plpgsql AS $$
DECLARE
  wanted text;
BEGIN
  LOCK TABLE agent_routes IN SHARE ROW EXCLUSIVE MODE;
  SELECT r.route, r.agent INTO route, owner FROM agent_routes r
    WHERE r.route = ANY (p_routes) AND r.agent <> p_name ORDER BY r.route LIMIT 1;
  IF FOUND THEN
    outcome := 'route_taken'; RETURN;
  END IF;
  owner := NULL;
  FOREACH wanted IN ARRAY p_routes LOOP
    SELECT array_agg(inside.user_id ORDER BY inside.user_id) INTO ids FROM (
      SELECT a.user_id FROM accounts a
        WHERE (wanted LIKE 'd:%' AND right(a.user_id, length(wanted) - 1) = '@' || substr(wanted, 3))
           OR (wanted LIKE 'p:%' AND starts_with(a.user_id, substr(wanted, 3)))
        ORDER BY a.user_id LIMIT 21) inside;
    IF ids IS NOT NULL THEN
      outcome := 'accounts_inside'; route := wanted; RETURN;
    END IF;
  END LOOP;
  INSERT INTO agents (name, enrolled_at) VALUES (p_name, p_enrolled_at)
    ON CONFLICT (name) DO UPDATE SET enrolled_at = EXCLUDED.enrolled_at;
  DELETE FROM agent_routes r WHERE r.agent = p_name;
  INSERT INTO agent_routes (route, agent) SELECT DISTINCT unnest(p_routes), p_name;
  outcome := 'enrolled'; route := NULL; ids := NULL;
END
$$;
