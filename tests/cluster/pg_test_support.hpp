// What the doctest suites against the real PostgreSQL (pg_server.hpp) share:
// a connection that must open, and a fresh schema brought to the latest version.
#pragma once

#include <doctest/doctest.h>

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

}  // namespace tsunagu::test
