// LAN agents' enrolments on PostgreSQL against a real server
// (tests/cluster/pg_server.hpp): schema version 3 from empty and from
// version 2 with rows in it, the enrolment's checks, removal (with the
// voicemail of the agent's extensions), route lookups as the node makes them
// (PgAgentDirectory on a PgReader), the account cache in
// PgAccountDirectory following the shared epoch, and the last login a
// lookup reports, read off the loop.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <uv.h>

#include <optional>
#include <string>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_agent_admin.hpp"
#include "cluster/pg/pg_agent_directory.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "cluster/pg/pg_voicemail_boxes.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using tsunagu::test::add_account;
using tsunagu::test::connect_to;
using tsunagu::test::database_at_version;
using tsunagu::test::enroll;
using tsunagu::test::migrated_database;
using tsunagu::test::PgNodeFixture;
using tsunagu::test::text;
using rendezvous::AgentEnrollment;

TEST_CASE("schema 3 from empty: agent_enroll exists and routes are checked for their form") {
  auto connection = connect_to(migrated_database());
  CHECK(latest_schema_version() >= 3);
  CHECK(text(*connection, "SELECT to_regproc('agent_enroll') IS NOT NULL") == "t");
  REQUIRE(connection->exec("INSERT INTO agents (name, enrolled_at) VALUES ('x', 1)"));
  for (const char* route : {"acme", "q:acme", "p:81", "d:a@b"}) {
    auto bad = connection->exec("INSERT INTO agent_routes (route, agent) VALUES ($1, 'x')", {std::string(route)});
    REQUIRE_FALSE(bad);
    CHECK_MESSAGE(bad.error().sqlstate == "23514", route);  // check_violation
  }
  CHECK(connection->exec("INSERT INTO agent_routes (route, agent) VALUES ('d:acme', 'x'), ('p:+81-6', 'x')"));
}

TEST_CASE("schema 3 from version 2: the enrolments written under version 2 are kept and used") {
  auto connection = connect_to(database_at_version(2));
  CHECK(require_current_schema(*connection).error().code == PgErrc::schema_missing);
  // As an operator (or a node of version 2) could have left them.
  REQUIRE(connection->exec("INSERT INTO agents (name, enrolled_at) VALUES ('acme', 1700000000)"));
  REQUIRE(connection->exec("INSERT INTO agent_routes (route, agent) VALUES ('d:acme', 'acme'), ('p:+81-6', 'acme')"));
  add_account(*connection, "alice");

  auto report = migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  CHECK(report->from == 2);
  REQUIRE_FALSE(report->applied.empty());
  CHECK(report->applied.front() == 3);
  CHECK(report->to == latest_schema_version());
  CHECK(require_current_schema(*connection).has_value());
  auto agents = pg_list_agents(*connection);
  REQUIRE(agents);
  REQUIRE(agents->size() == 1);
  CHECK(agents->front() == AgentEnrollment{"acme", {"acme"}, {"+81-6"}, 1700000000});
  CHECK(text(*connection, "SELECT count(*) FROM accounts") == "1");
  // The old rows take part in the new checks.
  auto taken = enroll(*connection, AgentEnrollment{"other", {"acme"}, {}, 5});
  CHECK(taken.outcome == PgEnrolment::Outcome::route_taken);
  CHECK(taken.route == "acme");
  CHECK(taken.owner == "acme");
}

TEST_CASE("enrolment: replaces the agent's routes, refuses another agent's route and routes accounts use") {
  auto connection = connect_to(migrated_database());
  CHECK(enroll(*connection, AgentEnrollment{"acme", {"acme", "acme.jp"}, {"+81-6-"}, 10}).outcome ==
        PgEnrolment::Outcome::enrolled);
  // Enrolled again: its routes are replaced, not added to.
  CHECK(enroll(*connection, AgentEnrollment{"acme", {"acme"}, {"+81-6-1"}, 11}).outcome ==
        PgEnrolment::Outcome::enrolled);
  auto agents = pg_list_agents(*connection);
  REQUIRE(agents);
  REQUIRE(agents->size() == 1);
  CHECK(agents->front() == AgentEnrollment{"acme", {"acme"}, {"+81-6-1"}, 11});

  auto taken = enroll(*connection, AgentEnrollment{"beta", {"beta", "acme"}, {}, 12});
  CHECK(taken.outcome == PgEnrolment::Outcome::route_taken);
  CHECK(taken.route == "acme");
  CHECK(taken.owner == "acme");
  CHECK(text(*connection, "SELECT count(*) FROM agents WHERE name = 'beta'") == "0");

  add_account(*connection, "carl@beta");
  add_account(*connection, "+44-20-7946");
  add_account(*connection, "beta");  // not inside: no @beta
  auto inside = enroll(*connection, AgentEnrollment{"beta", {"beta"}, {}, 13});
  CHECK(inside.outcome == PgEnrolment::Outcome::accounts_inside);
  CHECK(inside.route == "beta");
  CHECK(inside.ids == std::vector<std::string>{"carl@beta"});
  auto by_prefix = enroll(*connection, AgentEnrollment{"uk", {}, {"+44-20"}, 13});
  CHECK(by_prefix.outcome == PgEnrolment::Outcome::accounts_inside);
  CHECK(by_prefix.ids == std::vector<std::string>{"+44-20-7946"});

  // A failing bundle rolls the enrolment back.
  auto failed = pg_enroll_agent(*connection, AgentEnrollment{"gamma", {"gamma"}, {}, 14},
                                []() -> Expected<void, std::string> { return Unexpected(std::string("disk full")); });
  CHECK_FALSE(failed);
  CHECK(text(*connection, "SELECT count(*) FROM agent_routes WHERE route = 'd:gamma'") == "0");

  auto removed = pg_remove_agent(*connection, "acme");
  REQUIRE(removed);
  CHECK(*removed == std::optional<uint64_t>(0));  // no voicemail to delete
  CHECK(text(*connection, "SELECT count(*) FROM agent_routes") == "0");
  CHECK(*pg_remove_agent(*connection, "acme") == std::nullopt);
}

TEST_CASE("agent remove --pg deletes the voicemail of its extensions with it, in one transaction") {
  PgNodeFixture node;
  auto& admin = *node.admin;
  CHECK(enroll(admin, AgentEnrollment{"acme", {"acme"}, {"+81-6"}, 1}).outcome == PgEnrolment::Outcome::enrolled);
  CHECK(enroll(admin, AgentEnrollment{"osaka", {"osaka.jp"}, {"+81-7"}, 1}).outcome == PgEnrolment::Outcome::enrolled);
  // Stored as the node stores a message for an extension whose agent is away.
  PgVoicemailBoxes boxes(*node.accounts);
  const Bytes recording(100, std::byte{7});
  for (const char* mailbox : {"4106@acme", "4107@acme", "+81-6-1234", "+81-61",  // inside acme's routes
                              "bob@acme.jp", "acme", "x@subacme", "+81-6-1@elsewhere",  // not inside
                              "5@osaka.jp", "+81-7-1", "bob"})
    REQUIRE(boxes.add(mailbox, "alice", 1'700'000'000, recording));
  CHECK_FALSE(node.commit().has_value());
  const std::string remaining_mailboxes =
      "SELECT string_agg(v.recipient, ',' ORDER BY v.recipient COLLATE \"C\") FROM voicemail v "
      "JOIN voicemail_data d USING (id)";
  CHECK(text(admin, remaining_mailboxes) ==
        "+81-6-1234,+81-6-1@elsewhere,+81-61,+81-7-1,4106@acme,4107@acme,5@osaka.jp,acme,bob,bob@acme.jp,x@subacme");

  // A deletion that fails takes the removal back with it.
  REQUIRE(admin.exec("CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"));
  REQUIRE(admin.exec("CREATE TRIGGER mail_stays BEFORE DELETE ON voicemail FOR EACH ROW "
                     "WHEN (OLD.recipient = '4107@acme') EXECUTE FUNCTION refuse_delete()"));
  auto refused = pg_remove_agent(admin, "acme");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().detail.find("refused") != std::string::npos);
  CHECK(text(admin, "SELECT count(*) FROM agent_routes WHERE agent = 'acme'") == "2");
  CHECK(text(admin, "SELECT count(*) FROM voicemail") == "11");
  REQUIRE(admin.exec("DROP TRIGGER mail_stays ON voicemail"));

  auto removed = pg_remove_agent(admin, "acme");
  REQUIRE_MESSAGE(removed, (removed ? "" : removed.error().detail));
  CHECK(*removed == std::optional<uint64_t>(4));
  CHECK(text(admin, remaining_mailboxes) == "+81-6-1@elsewhere,+81-7-1,5@osaka.jp,acme,bob,bob@acme.jp,x@subacme");
  CHECK(text(admin, "SELECT count(*) FROM voicemail_data") == "7");  // the recordings went with their headers
  CHECK(text(admin, "SELECT count(*) FROM agent_routes") == "2");   // osaka's
  // The node's own reads agree: the extension's mailbox is empty for its next owner.
  CHECK(boxes.usage("4106@acme").value().messages == 0);
  CHECK(boxes.usage("bob@acme.jp").value().messages == 1);
  CHECK(*pg_remove_agent(admin, "acme") == std::nullopt);
}

TEST_CASE("the node's reads: owners of domains and prefixes, the route of an ID, the longest prefix") {
  std::string conninfo = migrated_database();
  auto connection = connect_to(conninfo);
  CHECK(enroll(*connection, AgentEnrollment{"acme", {"acme"}, {"+81-6", "+81-6-1234"}, 1}).outcome ==
        PgEnrolment::Outcome::enrolled);
  CHECK(enroll(*connection, AgentEnrollment{"osaka", {}, {"+81-6-12"}, 1}).outcome == PgEnrolment::Outcome::enrolled);
  auto reader = PgReader::connect(uv_default_loop(), conninfo);
  REQUIRE(reader);
  int reader_backend = (*reader)->connection().backend_pid();
  PgAgentDirectory agents(std::shared_ptr<PgReader>(std::move(*reader)));
  CHECK(agents.domain_owner("acme").value() == std::optional<std::string>("acme"));
  CHECK(agents.domain_owner("beta").value() == std::nullopt);
  CHECK(agents.prefix_owner("+81-6-12").value() == std::optional<std::string>("osaka"));
  CHECK(agents.prefix_owner("+81").value() == std::nullopt);
  CHECK(agents.route_of("4106@acme").value() == std::optional<std::string>("acme"));
  CHECK(agents.route_of("4106@beta").value() == std::nullopt);
  CHECK(agents.route_of("+81-6-1234-5678").value() == std::optional<std::string>("+81-6-1234"));
  CHECK(agents.route_of("+81-6-1299").value() == std::optional<std::string>("+81-6-12"));
  CHECK(agents.route_of("+81-6-0").value() == std::optional<std::string>("+81-6"));
  CHECK(agents.route_of("+44-1").value() == std::nullopt);
  CHECK(agents.route_of("alice").value() == std::nullopt);

  // The read connection lost (its backend terminated): reads fail, and the
  // server is taken as down for retry_ms (the loop's clock does not move
  // here); an ID naming no domain or number needs no read and is answered.
  REQUIRE(connection->exec("SELECT pg_terminate_backend($1::int, 5000)", {std::to_string(reader_backend)}));
  CHECK_FALSE(agents.route_of("4106@acme"));
  CHECK_FALSE(agents.domain_owner("acme"));
  auto plain = agents.route_of("alice");
  REQUIRE_MESSAGE(plain, (plain ? "" : plain.error().detail));
  CHECK(*plain == std::nullopt);
}

TEST_CASE("the account cache: a second find costs no read; a removal elsewhere (the epoch) drops it") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  uv_loop_t* loop = uv_default_loop();
  auto opened = PgAccountDirectory::open(loop, conninfo, PgAccountDirectory::Options{});
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().detail));
  auto& directory = **opened;
  REQUIRE(directory.epoch());
  add_account(*admin, "alice");
  REQUIRE(directory.find("alice").value().has_value());
  CHECK(directory.cache().misses() == 1);
  // Kept: changed behind the node's back without the epoch, the node still
  // answers from its copy (until max age) ...
  REQUIRE(admin->exec("UPDATE accounts SET display_name = 'Changed' WHERE user_id = 'alice'"));
  CHECK(directory.find("alice").value()->display_name == "");
  CHECK(directory.cache().hits() == 1);
  // ... and a removal moves the epoch on: the next epoch read drops the copy.
  PgAccountStore store;
  PgTurn turn;
  std::optional<Expected<bool, PgError>> removed;
  store.remove(turn, "alice", 1, [&](Expected<bool, PgError> r) { removed.emplace(std::move(r)); });
  REQUIRE(run_turn(*admin, turn));
  CHECK(directory.find("alice").value().has_value());  // within the check interval: still the copy
  REQUIRE(directory.epoch());
  CHECK(directory.cache().size() == 0);
  CHECK_FALSE(directory.find("alice").value().has_value());
  // Absent accounts are not kept: one created elsewhere is found at once.
  add_account(*admin, "bob");
  CHECK_FALSE(directory.find("carol").value().has_value());
  add_account(*admin, "carol");
  CHECK(directory.find("carol").value().has_value());
  directory.close();
}

TEST_CASE("a lookup's last login: read on the committer's worker, answered on a later loop turn") {
  PgNodeFixture node;
  add_account(*node.admin, "alice");
  REQUIRE(node.admin->exec("INSERT INTO logins (user_id, time, observed) VALUES ('alice', 1700000123, '192.0.2.7:4000')"));
  using Answer = Expected<std::optional<rendezvous::LoginRecord>, storage::StoreError>;
  std::optional<Answer> answer;
  auto ask = [&](const std::string& user_id) {
    answer.reset();
    node.accounts->last_login_then(user_id, [&](Answer record) { answer.emplace(std::move(record)); });
    // Not read during the call (the loop's read connection would block it):
    // queued for the committer's worker, and no reply is held for a write.
    CHECK_FALSE(answer.has_value());
    CHECK_FALSE(node.accounts->writes_pending());
    tsunagu::test::run_until(&node.loop, [&] { return answer.has_value(); });
  };
  ask("alice");
  REQUIRE_MESSAGE(*answer, (*answer ? "" : answer->error().detail));
  REQUIRE(answer->value().has_value());
  CHECK(answer->value()->time == 1700000123);
  CHECK(answer->value()->observed == proto::SocketAddress::parse("192.0.2.7:4000"));
  ask("nobody");
  CHECK(answer->value() == std::nullopt);

  // The worker's backend ended: the read fails (the node answers "never
  // seen"), and the next one reconnects.
  REQUIRE(node.admin->exec("SELECT pg_terminate_backend($1::int, 5000)",
                           {std::to_string(node.accounts->committer().backend_pid())}));
  ask("alice");
  CHECK_FALSE(*answer);
  ask("alice");
  REQUIRE_MESSAGE(*answer, (*answer ? "" : answer->error().detail));
  CHECK(answer->value()->time == 1700000123);
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
