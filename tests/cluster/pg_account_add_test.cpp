// `user add --pg` as one locked statement (schema 4's account_add()) against
// a real server (tests/cluster/pg_server.hpp): the checks from empty and from
// version 3 holding accounts, removals and an enrolment, and an add racing an
// `agent --pg enroll` in both orders, each held open in its transaction until
// the other is seen waiting on its lock; a node's registration and its web
// API's admin endpoints (PgAccountDirectory::create, PgSharedAccountAdmin).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "cluster/pg/pg_account_admin.hpp"
#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_agent_admin.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "tests/cluster/pg_server.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using rendezvous::AccountAdminErrc;
using rendezvous::AgentEnrollment;
using rendezvous::NewAccount;
using tsunagu::test::connect_to;
using tsunagu::test::database_at_version;
using tsunagu::test::enroll;
using tsunagu::test::migrated_database;
using tsunagu::test::text;

namespace {

constexpr uint64_t now = 1'800'000'000;
constexpr uint32_t quarantine_days = 30;

NewAccount account(const std::string& user_id, bool reuse_removed_id = false) {
  NewAccount added;
  added.user_id = user_id;
  added.password_hash = "scram-hash-of-" + user_id;
  added.display_name = "Name of " + user_id;
  added.reuse_removed_id = reuse_removed_id;
  return added;
}

// The error code of an add, or nullopt when it was added.
std::optional<AccountAdminErrc> add(PgConnection& connection, const std::string& user_id, uint64_t at = now,
                                    bool reuse_removed_id = false) {
  auto added = pg_add_account(connection, account(user_id, reuse_removed_id), quarantine_days, at);
  if (added) return std::nullopt;
  return added.error().code;
}

std::string agent_route_message(PgConnection& connection, const std::string& user_id) {
  auto added = pg_add_account(connection, account(user_id), quarantine_days, now);
  REQUIRE_FALSE(added);
  CHECK(added.error().code == AccountAdminErrc::agent_route);
  return added.error().detail;
}

// Waits (bounded) until some backend waits for a lock on agent_routes.
bool someone_waits_on_routes(PgConnection& observer) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (text(observer, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'agent_routes'::regclass") != "0")
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The checks of `user add --pg`, on a database at the latest version with
// acme enrolled for the domain acme and the prefix +81-6.
void check_add_refusals(PgConnection& connection) {
  CHECK(agent_route_message(connection, "4106@acme").starts_with("4106@acme is inside acme,"));
  CHECK(agent_route_message(connection, "+81-6-1234").starts_with("+81-6-1234 is inside +81-6,"));
  CHECK(add(connection, "+81-7-1234") == std::nullopt);  // another prefix
  CHECK(add(connection, "bob@acme.example") == std::nullopt);  // another domain
  CHECK(text(connection, "SELECT count(*) FROM accounts WHERE user_id IN ('4106@acme', '+81-6-1234')") == "0");
}

}  // namespace

TEST_CASE("schema 4 from empty: user add --pg's checks in one statement") {
  auto connection = connect_to(migrated_database());
  CHECK(latest_schema_version() >= 4);
  CHECK(text(*connection, "SELECT to_regproc('account_add') IS NOT NULL") == "t");
  REQUIRE(enroll(*connection, AgentEnrollment{"acme", {"acme"}, {"+81-6"}, 10}).outcome == PgEnrolment::Outcome::enrolled);
  check_add_refusals(*connection);

  CHECK(add(*connection, "alice") == std::nullopt);
  CHECK(text(*connection, "SELECT password_hash || '|' || display_name || '|' || created_at FROM accounts "
                          "WHERE user_id = 'alice'") == "scram-hash-of-alice|Name of alice|" + std::to_string(now));
  CHECK(add(*connection, "alice") == AccountAdminErrc::exists);
  // The generation is the epoch the account was made under.
  auto removed = pg_remove_account(*connection, "alice", now + 10);
  REQUIRE(removed);
  CHECK(text(*connection, "SELECT epoch FROM account_epoch") == "1");
  CHECK(add(*connection, "carol") == std::nullopt);
  CHECK(text(*connection, "SELECT generation FROM accounts WHERE user_id = 'carol'") == "1");

  // Quarantine: refused until it ends (removed_at + 30 days), unless reused.
  uint64_t ends = now + 10 + uint64_t{quarantine_days} * 86400;
  CHECK(add(*connection, "alice", ends - 1) == AccountAdminErrc::quarantined);
  CHECK(add(*connection, "alice", ends) == std::nullopt);
  REQUIRE(pg_remove_account(*connection, "alice", now + 20));
  CHECK(add(*connection, "alice", now + 30, true) == std::nullopt);
  // A route refusal wins over the quarantine and the taken ID, as on LMDB.
  REQUIRE(connection->exec("INSERT INTO removed_ids (user_id, removed_at) VALUES ('5@acme', $1::bigint)",
                           {std::to_string(now)}));
  CHECK(add(*connection, "5@acme") == AccountAdminErrc::agent_route);
}

TEST_CASE("schema 4 from version 3: accounts, removals and enrolments of version 3 take part in the checks") {
  auto connection = connect_to(database_at_version(3));
  CHECK(text(*connection, "SELECT to_regproc('account_add') IS NULL") == "t");
  // As version 3's CLI and nodes left them.
  REQUIRE(text(*connection, "SELECT outcome FROM agent_enroll('acme', 10, ARRAY['d:acme', 'p:+81-6'])") == "enrolled");
  REQUIRE(connection->exec("INSERT INTO accounts (user_id, password_hash, created_at, generation) "
                           "VALUES ('dave', 'x', 1, 0)"));
  REQUIRE(connection->exec("INSERT INTO removed_ids (user_id, removed_at) VALUES ('erin', $1::bigint)",
                           {std::to_string(now - 86400)}));

  auto report = migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  CHECK(report->from == 3);
  REQUIRE_FALSE(report->applied.empty());
  CHECK(report->applied.front() == 4);  // and the later ones
  CHECK(require_current_schema(*connection).has_value());
  check_add_refusals(*connection);
  CHECK(add(*connection, "dave") == AccountAdminErrc::exists);
  CHECK(add(*connection, "erin") == AccountAdminErrc::quarantined);
  CHECK(add(*connection, "erin", now, true) == std::nullopt);
  CHECK(text(*connection, "SELECT string_agg(user_id, ',' ORDER BY user_id) FROM accounts") ==
        "+81-7-1234,bob@acme.example,dave,erin");
}

TEST_CASE("an add racing an enrolment of the route around it: the one committing second sees the first") {
  std::string conninfo = migrated_database();
  auto observer = connect_to(conninfo);

  SUBCASE("the enrolment holds its transaction open: the add waits, then is refused") {
    auto enrolling = connect_to(conninfo);
    auto adding = connect_to(conninfo);
    std::optional<rendezvous::AdminResult<void>> added;
    std::thread adder;
    auto enrolled = pg_enroll_agent(*enrolling, AgentEnrollment{"acme", {"acme"}, {}, 10},
                                    [&]() -> Expected<void, std::string> {
                                      adder = std::thread([&] {
                                        added.emplace(pg_add_account(*adding, account("4106@acme"), quarantine_days, now));
                                      });
                                      CHECK(someone_waits_on_routes(*observer));
                                      return {};
                                    });
    adder.join();
    REQUIRE(enrolled);
    CHECK(enrolled->outcome == PgEnrolment::Outcome::enrolled);
    REQUIRE(added.has_value());
    REQUIRE_FALSE(*added);
    CHECK(added->error().code == AccountAdminErrc::agent_route);
  }

  SUBCASE("the add holds its transaction open: the enrolment waits, then finds the account inside") {
    auto adding = connect_to(conninfo);
    auto enrolling = connect_to(conninfo);
    REQUIRE(adding->exec("BEGIN"));
    CHECK(text(*adding,
               "SELECT outcome FROM account_add('4106@acme', 'x', '', '', '', false, 0, NULL, 1, 0, false, '{}', "
               "false, false, NULL)") == "added");
    std::optional<Expected<PgEnrolment, std::string>> enrolled;
    std::thread enroller([&] {
      enrolled.emplace(pg_enroll_agent(*enrolling, AgentEnrollment{"acme", {"acme"}, {}, 10},
                                       []() -> Expected<void, std::string> { return {}; }));
    });
    CHECK(someone_waits_on_routes(*observer));
    REQUIRE(adding->exec("COMMIT"));
    enroller.join();
    REQUIRE(enrolled.has_value());
    REQUIRE_MESSAGE(*enrolled, (*enrolled ? "" : enrolled->error()));
    CHECK((*enrolled)->outcome == PgEnrolment::Outcome::accounts_inside);
    CHECK((*enrolled)->ids == std::vector<std::string>{"4106@acme"});
  }

  SUBCASE("two adds do not wait for each other") {
    auto first = connect_to(conninfo);
    auto second = connect_to(conninfo);
    REQUIRE(first->exec("BEGIN"));
    CHECK(text(*first, "SELECT outcome FROM account_add('a1', 'x', '', '', '', false, 0, NULL, 1, 0, false, '{}', "
                       "false, false, NULL)") == "added");
    CHECK(add(*second, "a2") == std::nullopt);  // would hang here if the adds' locks conflicted
    REQUIRE(first->exec("COMMIT"));
    CHECK(text(*observer, "SELECT count(*) FROM accounts") == "2");
  }
}

TEST_CASE("a node's registration and its web API's admin endpoints run account_add() on the read connection") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  REQUIRE(enroll(*admin, AgentEnrollment{"acme", {"acme"}, {}, 10}).outcome == PgEnrolment::Outcome::enrolled);
  REQUIRE(add(*admin, "gone") == std::nullopt);
  REQUIRE(pg_remove_account(*admin, "gone", now - 10));
  auto opened = PgAccountDirectory::open(uv_default_loop(), conninfo, PgAccountDirectory::Options{});
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().detail));
  auto& directory = **opened;
  directory.set_removed_id_quarantine_days(quarantine_days);
  auto registered = [&](const std::string& user_id) {
    rendezvous::Account account;
    account.user_id = user_id;
    account.password_hash = "scram-hash-of-" + user_id;
    account.display_name = "Name of " + user_id;
    account.created_at = now;
    auto created = directory.create(account);
    REQUIRE_MESSAGE(created, (created ? "" : created.error().detail));
    return *created;
  };

  SUBCASE("registration: added at once, or refused as taken by the statement's own checks") {
    CHECK(registered("dave"));
    CHECK(text(*admin, "SELECT display_name || '|' || created_at FROM accounts WHERE user_id = 'dave'") ==
          "Name of dave|" + std::to_string(now));
    CHECK(directory.find("dave").value().has_value());
    CHECK_FALSE(registered("dave"));        // registered meanwhile on another node
    CHECK_FALSE(registered("4106@acme"));   // enrolled into an agent's route meanwhile
    CHECK_FALSE(registered("gone"));        // removed meanwhile: in its quarantine
    directory.set_removed_id_quarantine_days(0);  // a reload
    CHECK(registered("gone"));
    CHECK(text(*admin, "SELECT count(*) FROM accounts WHERE user_id = '4106@acme'") == "0");
  }

  SUBCASE("the web API's admin: read, list, add and remove with the CLI's checks") {
    PgSharedAccountAdmin accounts(directory.reader());
    for (const char* user_id : {"alice", "bob", "carol"}) REQUIRE(add(*admin, user_id) == std::nullopt);
    auto alice = accounts.read("alice");
    REQUIRE(alice);
    CHECK(alice->display_name == "Name of alice");
    CHECK(accounts.read("nobody").error().code == AccountAdminErrc::no_such_user);
    auto first = accounts.list("", "", 2);
    REQUIRE(first);
    REQUIRE(first->accounts.size() == 2);
    CHECK(first->accounts[0].user_id == "alice");
    REQUIRE(first->next_cursor == std::optional<std::string>("bob"));
    auto rest = accounts.list("", *first->next_cursor, 2);
    REQUIRE(rest);
    REQUIRE(rest->accounts.size() == 1);
    CHECK(rest->accounts[0].user_id == "carol");
    CHECK_FALSE(rest->next_cursor);
    auto matching = accounts.list("NAME OF B", "", 10);  // case-insensitive, in the display name too
    REQUIRE(matching);
    REQUIRE(matching->accounts.size() == 1);
    CHECK(matching->accounts[0].user_id == "bob");

    CHECK(accounts.add(account("erin"), quarantine_days, now));
    CHECK(accounts.add(account("erin"), quarantine_days, now).error().code == AccountAdminErrc::exists);
    CHECK(accounts.add(account("5@acme"), quarantine_days, now).error().code == AccountAdminErrc::agent_route);
    CHECK(accounts.add(account("gone"), quarantine_days, now).error().code == AccountAdminErrc::quarantined);
    CHECK(accounts.add(account("card-1234"), quarantine_days, now).error().code == AccountAdminErrc::invalid_id);
    CHECK(accounts.add(account("Not An ID"), quarantine_days, now).error().code == AccountAdminErrc::invalid_id);
    std::string epoch = text(*admin, "SELECT epoch FROM account_epoch");
    CHECK(accounts.remove("erin", now + 5));
    CHECK(text(*admin, "SELECT epoch FROM account_epoch") != epoch);  // the other nodes end erin's links
    CHECK(accounts.remove("erin", now + 6).error().code == AccountAdminErrc::no_such_user);
    CHECK(accounts.add(account("erin"), quarantine_days, now + 7).error().code == AccountAdminErrc::quarantined);
  }
  directory.close();
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
