// The cluster schema's versioned migrations (cluster/schema/NNN_*.sql,
// embedded at build time): applied in order, each in its own transaction
// with its row in schema_migrations(version, name, applied_at), under an
// advisory lock so two nodes migrating at once do not interleave.
#pragma once

#include <vector>

#include "cluster/pg/pg_connection.hpp"

namespace tsunagu::cluster {

// The newest schema version this binary brings.
int latest_schema_version();

// The database's schema version: 0 for a database never migrated.
Expected<int, PgError> schema_version(PgConnection& connection);

struct MigrationReport {
  int from = 0;
  int to = 0;
  std::vector<int> applied;  // empty: the database was already current
};
// Brings the database to latest_schema_version(). Refuses (schema_too_new,
// nothing changed) a database a newer binary migrated.
Expected<MigrationReport, PgError> migrate(PgConnection& connection);
// Applies the migrations up to version `up_to` only (tests: a database as
// the previous binary left it, then migrated from there).
Expected<MigrationReport, PgError> migrate_up_to(PgConnection& connection, int up_to);

// What a node checks before serving: the database's version is exactly this
// binary's (older: schema_missing, telling to run `cluster migrate`; newer:
// schema_too_new).
Expected<void, PgError> require_current_schema(PgConnection& connection);

}  // namespace tsunagu::cluster
