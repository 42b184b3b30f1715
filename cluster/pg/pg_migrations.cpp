#include "cluster/pg/pg_migrations.hpp"

#include <string>

#include "cluster/pg/schema_migrations.hpp"

namespace tsunagu::cluster {

namespace {

// pg_advisory_xact_lock's key: any fixed number no other user of the
// database takes; this one spells "tsunagu" in ASCII.
constexpr const char* migration_lock_key = "32767113397892469";

PgError too_new(int version) {
  return PgError{PgErrc::schema_too_new, "",
                 "the database's schema is version " + std::to_string(version) + ", newer than this binary's " +
                     std::to_string(latest_schema_version()) + ": upgrade tsunagu-rendezvous on this host"};
}

// max(version) of schema_migrations, 0 when empty; inside the caller's transaction.
Expected<int, PgError> recorded_version(PgConnection& connection) {
  auto rows = connection.exec("SELECT coalesce(max(version), 0) AS version FROM schema_migrations");
  if (!rows) return Unexpected(rows.error());
  auto version = rows->integer(0, "version");
  if (!version) return Unexpected(PgError{PgErrc::bad_result, "", "schema_migrations: no version"});
  return static_cast<int>(*version);
}

Expected<void, PgError> rollback_with(PgConnection& connection, PgError error) {
  (void)connection.exec("ROLLBACK");
  return Unexpected(std::move(error));
}

}  // namespace

int latest_schema_version() { return static_cast<int>(embedded::migrations.size()); }

Expected<int, PgError> schema_version(PgConnection& connection) {
  auto table = connection.exec("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!table) return Unexpected(table.error());
  if (!table->boolean(0, "present").value_or(false)) return 0;
  return recorded_version(connection);
}

Expected<MigrationReport, PgError> migrate(PgConnection& connection) {
  return migrate_up_to(connection, latest_schema_version());
}

Expected<MigrationReport, PgError> migrate_up_to(PgConnection& connection, int up_to) {
  MigrationReport report;
  // Each step takes the lock inside its own transaction, so it holds exactly
  // as long as the step and is released by COMMIT or ROLLBACK alike.
  auto step = [&](auto body) -> Expected<void, PgError> {
    if (auto begun = connection.exec("BEGIN"); !begun) return Unexpected(begun.error());
    if (auto locked = connection.exec("SELECT pg_advisory_xact_lock($1::bigint)", {migration_lock_key}); !locked)
      return rollback_with(connection, locked.error());
    if (auto done = body(); !done) return rollback_with(connection, done.error());
    if (auto committed = connection.exec("COMMIT"); !committed) return Unexpected(committed.error());
    return {};
  };
  auto created = step([&]() -> Expected<void, PgError> {
    auto made = connection.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    if (!made) return Unexpected(made.error());
    auto current = recorded_version(connection);
    if (!current) return Unexpected(current.error());
    if (*current > latest_schema_version()) return Unexpected(too_new(*current));
    report.from = report.to = *current;
    return {};
  });
  if (!created) return Unexpected(created.error());
  for (const auto& migration : embedded::migrations) {
    if (migration.version > up_to) break;
    auto applied = step([&]() -> Expected<void, PgError> {
      // Read again under the lock: another node may have applied it meanwhile.
      auto current = recorded_version(connection);
      if (!current) return Unexpected(current.error());
      if (*current > latest_schema_version()) return Unexpected(too_new(*current));
      if (*current >= migration.version) return {};
      if (*current != migration.version - 1)
        return Unexpected(PgError{PgErrc::bad_result, "", "schema_migrations skips a version before " +
                                                              std::to_string(migration.version)});
      std::string script(migration.sql);
      if (auto ran = connection.exec_script(script.c_str()); !ran) {
        PgError error = ran.error();
        error.detail = std::string(migration.name) + ": " + error.detail;
        return Unexpected(error);
      }
      auto recorded = connection.exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                      {std::to_string(migration.version), std::string(migration.name)});
      if (!recorded) return Unexpected(recorded.error());
      report.applied.push_back(migration.version);
      return {};
    });
    if (!applied) return Unexpected(applied.error());
    report.to = std::max(report.to, migration.version);
  }
  return report;
}

Expected<void, PgError> require_current_schema(PgConnection& connection) {
  auto version = schema_version(connection);
  if (!version) return Unexpected(version.error());
  if (*version > latest_schema_version()) return Unexpected(too_new(*version));
  if (*version < latest_schema_version())
    return Unexpected(PgError{PgErrc::schema_missing, "",
                              "the database's schema is version " + std::to_string(*version) + ", this binary needs " +
                                  std::to_string(latest_schema_version()) +
                                  ": run `tsunagu-rendezvous cluster migrate --pg CONNINFO`"});
  return {};
}

}  // namespace tsunagu::cluster
