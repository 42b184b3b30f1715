// The directory and profiles on PostgreSQL against a real server
// (tests/cluster/pg_server.hpp): schema version 5 from empty and from version
// 4 holding accounts, the directory's scan of published accounts as the node
// makes it (PgAccountDirectory::list_published on its read connection), and
// profile changes in the turn's group commit: only the profile's columns,
// never an account removed meanwhile, seen by the node's next read before
// they commit.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <uv.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "tests/cluster/pg_server.hpp"
#include "tests/cluster/pg_test_support.hpp"
#include "tests/cluster/pg_turn_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using tsunagu::test::PgServer;
using tsunagu::test::commit_and_wait;
using tsunagu::test::connect_to;
using tsunagu::test::migrated_database;

namespace {

std::string text(PgConnection& connection, const std::string& sql, std::vector<PgParam> params = {}) {
  auto rows = connection.exec(sql, params);
  REQUIRE_MESSAGE(rows, (rows ? "" : rows.error().detail));
  REQUIRE(!rows->rows.empty());
  return rows->text(0, rows->columns.at(0)).value_or("NULL");
}

void add_account(PgConnection& connection, const std::string& user_id, bool publish, const std::string& name = "") {
  auto added = connection.exec(
      "INSERT INTO accounts (user_id, password_hash, display_name, publish, created_at, generation) "
      "VALUES ($1, 'scram-hash', $2, $3::boolean, 1, 0)",
      {user_id, name, publish ? std::string("true") : std::string("false")});
  REQUIRE_MESSAGE(added, (added ? "" : added.error().detail));
}

std::vector<std::string> ids(const std::vector<rendezvous::Account>& accounts) {
  std::vector<std::string> out;
  for (const auto& account : accounts) out.push_back(account.user_id);
  return out;
}

std::unique_ptr<PgAccountDirectory> open_directory(uv_loop_t* loop, const std::string& conninfo) {
  auto opened = PgAccountDirectory::open(loop, conninfo, PgAccountDirectory::Options{});
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().detail));
  return std::move(*opened);
}

}  // namespace

TEST_CASE("schema 5 from empty: the index of published accounts") {
  auto connection = connect_to(migrated_database());
  CHECK(latest_schema_version() >= 5);
  CHECK(text(*connection, "SELECT to_regclass('accounts_published') IS NOT NULL") == "t");
  CHECK(text(*connection, "SELECT indexdef FROM pg_indexes WHERE indexname = 'accounts_published'")
            .ends_with("WHERE publish"));
}

TEST_CASE("schema 5 from version 4: accounts written under version 4 are kept and scanned") {
  std::string conninfo = PgServer::shared()->fresh_schema();
  REQUIRE(!conninfo.empty());
  auto connection = connect_to(conninfo);
  auto old = migrate_up_to(*connection, 4);
  REQUIRE_MESSAGE(old, (old ? "" : old.error().detail));
  CHECK(*schema_version(*connection) == 4);
  CHECK(text(*connection, "SELECT to_regclass('accounts_published') IS NULL") == "t");
  add_account(*connection, "alice", true, "Alice Smith");
  add_account(*connection, "bob", false, "Bob Smith");

  auto report = migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  CHECK(report->from == 4);
  REQUIRE_FALSE(report->applied.empty());
  CHECK(report->applied.front() == 5);
  CHECK(require_current_schema(*connection).has_value());
  CHECK(text(*connection, "SELECT count(*) FROM accounts") == "2");

  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    auto directory = open_directory(&loop, conninfo);
    auto published = directory->list_published("", 10);
    REQUIRE(published);
    CHECK(ids(*published) == std::vector<std::string>{"alice"});
    CHECK(published->front().display_name == "Alice Smith");
    directory->close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("the directory's scan: published rows only, in byte order, after the cursor, at most the limit") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  // Byte order ("C"): upper case before lower case, '+' before digits.
  for (const char* id : {"zed", "Zed", "+81-6-1", "alice", "bob", "carol@acme"}) add_account(*admin, id, true);
  add_account(*admin, "hidden", false);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    auto directory = open_directory(&loop, conninfo);
    auto all = directory->list_published("", 100);
    REQUIRE(all);
    CHECK(ids(*all) == std::vector<std::string>{"+81-6-1", "Zed", "alice", "bob", "carol@acme", "zed"});
    auto page = directory->list_published("alice", 2);
    REQUIRE(page);
    CHECK(ids(*page) == std::vector<std::string>{"bob", "carol@acme"});
    auto last = directory->list_published("carol@acme", 2);
    REQUIRE(last);
    CHECK(ids(*last) == std::vector<std::string>{"zed"});
    CHECK(directory->list_published("zed", 2).value().empty());
    directory->close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("profile changes: in the turn's commit, only the profile's columns, seen before they commit") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  add_account(*admin, "alice", false, "Alice");
  add_account(*admin, "gone", false, "Gone");
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    auto directory = open_directory(&loop, conninfo);
    auto alice = directory->find("alice").value().value();
    // Another process changes the password meanwhile (the node's copy is older).
    REQUIRE(admin->exec("UPDATE accounts SET password_hash = 'changed-elsewhere' WHERE user_id = 'alice'"));
    alice.display_name = "Alice Smith";
    alice.publish = true;
    alice.contacts = {"bob", "carol"};
    alice.password_hash = "stale-copy";  // not a profile field: must not be written
    REQUIRE(directory->update_profile(alice));
    CHECK(directory->writes_pending());
    // Before the commit: the node's next read is its own change (a second
    // change in the turn builds on it), PostgreSQL still has the old row.
    auto seen = directory->find("alice").value().value();
    CHECK(seen.display_name == "Alice Smith");
    seen.phone = "+81-6-1234-0000";
    REQUIRE(directory->update_profile(seen));
    CHECK(text(*admin, "SELECT display_name FROM accounts WHERE user_id = 'alice'") == "Alice");

    auto gone = directory->find("gone").value().value();
    REQUIRE(admin->exec("DELETE FROM accounts WHERE user_id = 'gone'"));
    gone.display_name = "Back Again";
    REQUIRE(directory->update_profile(gone));

    CHECK_FALSE(commit_and_wait(&loop, *directory).has_value());
    CHECK(text(*admin,
               "SELECT display_name || '|' || phone || '|' || publish || '|' || array_to_string(contacts, ',') || '|' "
               "|| password_hash FROM accounts WHERE user_id = 'alice'") ==
          "Alice Smith|+81-6-1234-0000|true|bob,carol|changed-elsewhere");
    CHECK(text(*admin, "SELECT count(*) FROM accounts WHERE user_id = 'gone'") == "0");
    // Answered: reads go to PostgreSQL again, and the scan finds her.
    CHECK(directory->find("alice").value().value().phone == "+81-6-1234-0000");
    CHECK(ids(directory->list_published("", 10).value()) == std::vector<std::string>{"alice"});
    CHECK_FALSE(directory->find("gone").value().has_value());

    // A turn that does not commit: the reply is an error and the change is
    // forgotten (the next read is the row as committed).
    auto again = directory->find("alice").value().value();
    again.display_name = "Never Stored";
    REQUIRE(admin->exec("CREATE FUNCTION end_own_backend() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"));
    REQUIRE(admin->exec("CREATE TRIGGER profile_dies BEFORE UPDATE ON accounts FOR EACH ROW "
                        "WHEN (NEW.display_name = 'Never Stored') EXECUTE FUNCTION end_own_backend()"));
    REQUIRE(directory->update_profile(again));
    CHECK(directory->find("alice").value().value().display_name == "Never Stored");
    CHECK(commit_and_wait(&loop, *directory).has_value());
    CHECK(directory->find("alice").value().value().display_name == "Alice Smith");
    REQUIRE(admin->exec("DROP TRIGGER profile_dies ON accounts"));
    directory->close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

int main(int argc, char** argv) {
  if (PgServer::shared() == nullptr) {
    std::cout << "SKIP: " << PgServer::skip_reason() << "\n";
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
