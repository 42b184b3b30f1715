// What the doctest suites against the real PostgreSQL (pg_server.hpp) share:
// a connection that must open, a fresh schema at the latest version (or at an
// older one, for a migration's test), reads of one value, rows written as an
// operator or an older binary would, the node's account directory on a libuv
// loop of its own (PgNodeFixture), and main().
#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_agent_admin.hpp"
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

// The first column of the first row of `sql`, as text ("NULL" for NULL); the
// statement must succeed and return a row.
inline std::string text(cluster::PgConnection& connection, const std::string& sql,
                        const std::vector<cluster::PgParam>& params = {}) {
  auto rows = connection.exec(sql, params);
  REQUIRE_MESSAGE(rows, (rows ? "" : rows.error().detail));
  REQUIRE(!rows->rows.empty());
  return rows->text(0, rows->columns.at(0)).value_or("NULL");
}

// The same, as an integer (a count, a sum).
inline int64_t number(cluster::PgConnection& connection, const std::string& sql) {
  auto rows = connection.exec(sql);
  REQUIRE_MESSAGE(rows, (rows ? "" : rows.error().detail));
  REQUIRE(!rows->rows.empty());
  auto value = rows->integer(0, rows->columns.at(0));
  REQUIRE(value);
  return *value;
}

// An account row as an operator (or an older binary) could have written it:
// a placeholder credential, no password would log in.
inline void add_account(cluster::PgConnection& connection, const std::string& user_id, bool publish = false,
                        const std::string& display_name = "") {
  auto added = connection.exec(
      "INSERT INTO accounts (user_id, password_hash, display_name, publish, created_at, generation) "
      "VALUES ($1, 'scram-hash', $2, $3::boolean, 1, 0)",
      {user_id, display_name, publish ? std::string("true") : std::string("false")});
  REQUIRE_MESSAGE(added, (added ? "" : added.error().detail));
}

// `agent --pg enroll`'s transaction, with a bundle that is written: the
// bundle's step runs exactly when the checks passed.
inline cluster::PgEnrolment enroll(cluster::PgConnection& connection, const rendezvous::AgentEnrollment& enrollment) {
  bool bundle_written = false;
  auto result = cluster::pg_enroll_agent(connection, enrollment, [&]() -> Expected<void, std::string> {
    bundle_written = true;
    return {};
  });
  REQUIRE_MESSAGE(result, (result ? "" : result.error()));
  CHECK(bundle_written == (result->outcome == cluster::PgEnrolment::Outcome::enrolled));
  return *result;
}

// A backend writing a row of `table` for which `condition` holds (on NEW)
// ends itself mid-transaction, as a server crash would end it: the turn
// carrying that write does not commit. `event` is "INSERT" or "UPDATE".
inline void end_backend_on(cluster::PgConnection& connection, const std::string& event, const std::string& table,
                           const std::string& condition) {
  REQUIRE(connection.exec("CREATE OR REPLACE FUNCTION end_own_backend() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"));
  REQUIRE(connection.exec("CREATE TRIGGER backend_ends BEFORE " + event + " ON " + table +
                          " FOR EACH ROW WHEN (" + condition + ") EXECUTE FUNCTION end_own_backend()"));
}

// Runs the loop until `done` holds, bounded by a count of loop turns.
template <class Done>
void run_until(uv_loop_t* loop, Done done) {
  for (int turns = 0; !done() && turns < 10'000; ++turns) uv_run(loop, UV_RUN_ONCE);
  REQUIRE(done());
}

// Seals the directory's turn and runs the loop until its answer is in:
// nullopt when the turn committed.
inline std::optional<storage::StoreError> commit_turn(uv_loop_t* loop, cluster::PgAccountDirectory& directory) {
  bool answered = false;
  std::optional<storage::StoreError> outcome;
  directory.commit_turn([&](std::optional<storage::StoreError> error) {
    answered = true;
    outcome = std::move(error);
  });
  run_until(loop, [&] { return answered; });
  return outcome;
}

// The node's side of one test: a database (the latest schema unless given),
// an operator's connection to it, and the node's account directory on a
// libuv loop of the fixture's own, closed and its loop run out at the end.
struct PgNodeFixture {
  explicit PgNodeFixture(std::string database = migrated_database())
      : conninfo(std::move(database)), admin(connect_to(conninfo)) {
    REQUIRE(uv_loop_init(&loop) == 0);
    auto opened = cluster::PgAccountDirectory::open(&loop, conninfo, cluster::PgAccountDirectory::Options{});
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().detail));
    accounts = std::move(*opened);
  }
  ~PgNodeFixture() {
    if (accounts) accounts->close();
    accounts.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  PgNodeFixture(const PgNodeFixture&) = delete;
  PgNodeFixture& operator=(const PgNodeFixture&) = delete;

  std::optional<storage::StoreError> commit() { return commit_turn(&loop, *accounts); }

  std::string conninfo;
  std::unique_ptr<cluster::PgConnection> admin;
  uv_loop_t loop{};
  std::unique_ptr<cluster::PgAccountDirectory> accounts;
};

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

}  // namespace tsunagu::test
