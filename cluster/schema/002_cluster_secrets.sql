-- Tsunagu cluster schema, version 2: secrets every node of a cluster must
-- share. The first is the key behind SCRAM's dummy salts (an unknown user
-- ID's salt is HMAC(key, ID)): with a key per node, asking two nodes for
-- the same unknown ID would tell it from an account, whose salt is the same
-- everywhere. Written once by the first node that starts (INSERT ... ON
-- CONFLICT DO NOTHING), read by the others.
CREATE TABLE cluster_secrets (
  name text PRIMARY KEY,
  value bytea NOT NULL
);
