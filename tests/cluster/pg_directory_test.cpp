// The directory and profiles on PostgreSQL against a real server
// (tests/cluster/pg_server.hpp): schema version 5 from empty and from version
// 4 holding accounts, version 7 (directory_profiles dropped) from empty and
// from version 6 holding profile rows, the directory's scan of published accounts as the node
// makes it (PgAccountDirectory::list_published on its read connection), and
// profile changes in the turn's group commit: only the profile's columns,
// never an account removed meanwhile, seen by the node's next read before
// they commit.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using tsunagu::test::add_account;
using tsunagu::test::connect_to;
using tsunagu::test::database_at_version;
using tsunagu::test::end_backend_on;
using tsunagu::test::migrated_database;
using tsunagu::test::PgNodeFixture;
using tsunagu::test::text;

namespace {

std::vector<std::string> ids(const std::vector<rendezvous::Account>& accounts) {
  std::vector<std::string> out;
  for (const auto& account : accounts) out.push_back(account.user_id);
  return out;
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
  std::string conninfo = database_at_version(4);
  auto connection = connect_to(conninfo);
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

  PgNodeFixture node(conninfo);
  auto published = node.accounts->list_published("", 10);
  REQUIRE(published);
  CHECK(ids(*published) == std::vector<std::string>{"alice"});
  CHECK(published->front().display_name == "Alice Smith");
}

TEST_CASE("schema 7 from empty: the latest, without directory_profiles") {
  auto connection = connect_to(migrated_database());
  CHECK(latest_schema_version() == 7);
  CHECK(text(*connection, "SELECT to_regclass('directory_profiles') IS NULL") == "t");
  CHECK(text(*connection, "SELECT to_regclass('directory_profiles_search_name') IS NULL") == "t");
  CHECK(text(*connection, "SELECT name FROM schema_migrations WHERE version = 7") ==
        "007_drop_directory_profiles.sql");
}

TEST_CASE("schema 7 from version 6: directory_profiles and its rows go, the accounts and their profiles stay") {
  std::string conninfo = database_at_version(6);
  auto connection = connect_to(conninfo);
  add_account(*connection, "alice", true, "Alice Smith");
  add_account(*connection, "bob", false, "Bob");
  // Rows as an operator could have put there; no binary ever wrote any.
  REQUIRE(connection->exec("INSERT INTO directory_profiles (user_id, search_name, profile, updated_at) "
                           "VALUES ('alice', 'alice smith', '{\"note\": 1}', 1)"));

  auto report = migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  CHECK(report->from == 6);
  CHECK(report->applied == std::vector<int>{7});
  CHECK(require_current_schema(*connection).has_value());
  CHECK(text(*connection, "SELECT to_regclass('directory_profiles') IS NULL") == "t");
  CHECK(text(*connection, "SELECT string_agg(user_id || ':' || display_name, ',' ORDER BY user_id) FROM accounts") ==
        "alice:Alice Smith,bob:Bob");

  // The node serves them as before, and an account goes without the foreign key.
  PgNodeFixture node(conninfo);
  CHECK(ids(node.accounts->list_published("", 10).value()) == std::vector<std::string>{"alice"});
  REQUIRE(connection->exec("DELETE FROM accounts WHERE user_id = 'alice'"));
  CHECK(node.accounts->list_published("", 10).value().empty());
}

TEST_CASE("the directory's scan: published rows only, in byte order, after the cursor, at most the limit") {
  PgNodeFixture node;
  // Byte order ("C"): upper case before lower case, '+' before digits.
  for (const char* id : {"zed", "Zed", "+81-6-1", "alice", "bob", "carol@acme"}) add_account(*node.admin, id, true);
  add_account(*node.admin, "hidden", false);
  auto& directory = *node.accounts;
  auto all = directory.list_published("", 100);
  REQUIRE(all);
  CHECK(ids(*all) == std::vector<std::string>{"+81-6-1", "Zed", "alice", "bob", "carol@acme", "zed"});
  auto page = directory.list_published("alice", 2);
  REQUIRE(page);
  CHECK(ids(*page) == std::vector<std::string>{"bob", "carol@acme"});
  auto last = directory.list_published("carol@acme", 2);
  REQUIRE(last);
  CHECK(ids(*last) == std::vector<std::string>{"zed"});
  CHECK(directory.list_published("zed", 2).value().empty());
}

TEST_CASE("profile changes: in the turn's commit, only the profile's columns, seen before they commit") {
  PgNodeFixture node;
  auto& admin = node.admin;
  auto& directory = node.accounts;
  add_account(*admin, "alice", false, "Alice");
  add_account(*admin, "gone", false, "Gone");
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

  CHECK_FALSE(node.commit().has_value());
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
  end_backend_on(*admin, "UPDATE", "accounts", "NEW.display_name = 'Never Stored'");
  REQUIRE(directory->update_profile(again));
  CHECK(directory->find("alice").value().value().display_name == "Never Stored");
  CHECK(node.commit().has_value());
  CHECK(directory->find("alice").value().value().display_name == "Alice Smith");
  REQUIRE(admin->exec("DROP TRIGGER backend_ends ON accounts"));
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
