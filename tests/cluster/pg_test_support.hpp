// What the doctest suites against the real PostgreSQL (pg_server.hpp) share:
// a connection that must open, and a fresh schema brought to the latest version.
#pragma once

#include <doctest/doctest.h>

#include <iostream>
#include <memory>
#include <string>

#include "cluster/pg/pg_connection.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "tests/cluster/pg_server.hpp"

namespace tsunagu::test {

inline std::unique_ptr<cluster::PgConnection> connect_to(const std::string& conninfo) {
  auto connection = cluster::PgConnection::connect(conninfo);
  REQUIRE_MESSAGE(connection, (connection ? "" : connection.error().detail));
  return std::move(*connection);
}

// A fresh schema (pg_server.hpp) brought to the latest version.
inline std::string migrated_database() {
  std::string conninfo = PgServer::shared()->fresh_schema();
  REQUIRE(!conninfo.empty());
  auto connection = connect_to(conninfo);
  auto report = cluster::migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  return conninfo;
}

// The test binary's main(): the tests, or exit 77 (skipped) saying why
// PostgreSQL cannot run here.
inline int run_tests_or_skip(int argc, char** argv) {
  if (PgServer::shared() == nullptr) {
    std::cout << "SKIP: " << PgServer::skip_reason() << "\n";
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

// A fresh schema as the binary of `version` left it (tests of the migration
// to the next version, from a database holding that version's rows).
inline std::string database_at_version(int version) {
  std::string conninfo = PgServer::shared()->fresh_schema();
  REQUIRE(!conninfo.empty());
  auto connection = connect_to(conninfo);
  auto old = cluster::migrate_up_to(*connection, version);
  REQUIRE_MESSAGE(old, (old ? "" : old.error().detail));
  CHECK(old->to == version);
  CHECK(*cluster::schema_version(*connection) == version);
  return conninfo;
}

}  // namespace tsunagu::test
