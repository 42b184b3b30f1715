// The access-card ledger on PostgreSQL as the node uses it, against a real
// server (tests/cluster/pg_server.hpp): schema version 6 from empty and from
// version 5 holding cards, PgCardLedgerStore through the node's interface
// (rendezvous::CardLedgerStore: reads on the read connection, debits and
// password changes in the account directory's turn, written only once it
// commits), two nodes' stores debiting one card without spending the same
// units, and the `card ... --pg` admin calls (serials never reused, a batch
// all or none, revocation).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <uv.h>

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_card_admin.hpp"
#include "cluster/pg/pg_card_ledger_store.hpp"
#include "tests/cluster/pg_server.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using rendezvous::CardAccount;
using rendezvous::CardEventKind;
using rendezvous::CardLedgerStore;
using rendezvous::LedgerOutcome;
using tsunagu::test::commit_turn;
using tsunagu::test::connect_to;
using tsunagu::test::database_at_version;
using tsunagu::test::text;
using tsunagu::test::migrated_database;

namespace {

CardAccount card(uint64_t serial, uint64_t units) {
  CardAccount account;
  account.serial = serial;
  account.card_id = "TSU-" + std::to_string(serial);
  account.password_hash = "printed-hash";
  account.units_issued = units;
  account.units_left = units;
  account.issued_at = 1764900000;
  account.expires_at = 1796436000;
  return account;
}

// One node's side: its account directory (read connection, turn) and its card store.
struct Node {
  explicit Node(const std::string& conninfo) {
    REQUIRE(uv_loop_init(&loop) == 0);
    auto opened = PgAccountDirectory::open(&loop, conninfo, PgAccountDirectory::Options{});
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().detail));
    accounts = std::move(*opened);
    store = std::make_unique<PgCardLedgerStore>(*accounts);
  }
  ~Node() {
    store.reset();
    accounts->close();
    accounts.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  CardLedgerStore& cards() { return *store; }
  std::optional<storage::StoreError> commit() { return commit_turn(&loop, *accounts); }
  uv_loop_t loop{};
  std::unique_ptr<PgAccountDirectory> accounts;
  std::unique_ptr<PgCardLedgerStore> store;
};

}  // namespace

TEST_CASE("schema 6 from empty: the password's time, the serial counter, the ledger's functions") {
  auto connection = connect_to(migrated_database());
  CHECK(latest_schema_version() >= 6);
  CHECK(text(*connection, "SELECT next_serial FROM card_serials") == "1");
  CHECK(text(*connection, "SELECT count(*) FROM pg_proc WHERE proname IN ('card_take_serials', 'card_revoke', "
                          "'card_set_password')") == "3");
  CHECK(text(*connection, "SELECT column_default FROM information_schema.columns WHERE table_name = 'card_accounts' "
                          "AND column_name = 'password_set_at'") == "0");
}

TEST_CASE("schema 6 from version 5: cards written under version 5 are kept, and new serials come after them") {
  std::string conninfo = database_at_version(5);
  auto connection = connect_to(conninfo);
  auto inserted = connection->exec(
      "INSERT INTO card_accounts (serial, card_id, password_hash, units_issued, units_left, issued_at, expires_at, "
      "events) VALUES (7, 'TSU-7', 'printed-hash', 30, 30, 1, 2000000000, 1)");
  REQUIRE_MESSAGE(inserted, (inserted ? "" : inserted.error().detail));
  auto report = migrate(*connection);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().detail));
  CHECK(report->from == 5);
  REQUIRE_FALSE(report->applied.empty());
  CHECK(report->applied.front() == 6);
  CHECK(pg_take_card_serials(*connection, 2).value() == 8);
  CHECK(pg_take_card_serials(*connection, 1).value() == 10);
  Node node(conninfo);
  auto found = node.cards().find(7);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->units_left == 30);
  CHECK((*found)->password_set_at == 0);
  CHECK((*found)->password_hash == "printed-hash");
}

TEST_CASE("the node's debits and password change are written in the turn's commit, and read back before it") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  REQUIRE(pg_add_cards(*admin, {card(1, 10)}));
  Node node(conninfo);

  auto debited = node.cards().debit(1, 3, 1764900100, "call 1234abcd route home");
  REQUIRE(debited);
  CHECK(debited->outcome == LedgerOutcome::done);
  CHECK(debited->units == 3);
  CHECK(debited->units_left == 7);
  CHECK(text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") == "10");  // not before the commit
  CHECK(node.cards().find(1).value()->units_left == 7);  // this node's next period sees it already
  CHECK_FALSE(node.commit());
  CHECK(text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") == "7");
  CHECK(node.cards().find(1).value()->units_left == 7);  // counted once, not twice, after the answer

  // Committed but its answer not yet back on the loop: the row has it, and
  // the node's read does not count it a second time.
  REQUIRE(node.cards().debit(1, 2, 1764900150, "").value().units_left == 5);
  bool answered = false;
  node.accounts->commit_turn([&](std::optional<storage::StoreError>) { answered = true; });
  uv_run(&node.loop, UV_RUN_NOWAIT);  // hands the turn to the committer's thread
  for (int waits = 0; waits < 1000 && text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") != "5";
       ++waits)
    usleep(10'000);
  REQUIRE(text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") == "5");
  CHECK_FALSE(answered);
  CHECK(node.cards().find(1).value()->units_left == 5);
  for (int turns = 0; !answered && turns < 10'000; ++turns) uv_run(&node.loop, UV_RUN_ONCE);
  REQUIRE(answered);
  CHECK(node.cards().find(1).value()->units_left == 5);

  auto changed = node.cards().set_password(1, "holder-hash", 1764900200, "set by the holder");
  REQUIRE(changed);
  CHECK(changed->outcome == LedgerOutcome::done);
  CHECK(node.cards().find(1).value()->password_hash == "holder-hash");
  CHECK_FALSE(node.commit());
  auto after = node.cards().find(1).value();
  REQUIRE(after);
  CHECK(after->password_hash == "holder-hash");
  CHECK(after->password_set_at == 1764900200);
  CHECK(after->events == 4);

  auto exhausted = node.cards().debit(1, 10, 1764900300, "call 1234abcd route home");
  REQUIRE(exhausted);
  CHECK(exhausted->outcome == LedgerOutcome::exhausted);
  CHECK(exhausted->units == 5);
  CHECK(exhausted->units_left == 0);
  CHECK_FALSE(node.commit());
  CHECK(node.cards().debit(1, 3, 1764900400, "").value().outcome == LedgerOutcome::no_units);
  CHECK(node.cards().debit(99, 3, 1764900400, "").value().outcome == LedgerOutcome::unknown_card);
  CHECK_FALSE(node.accounts->writes_pending());  // refused ones write nothing

  auto history = pg_card_history(*admin, 1, 0, 10);
  REQUIRE(history);
  REQUIRE(history->size() == 5);
  CHECK((*history)[0].kind == CardEventKind::issued);
  CHECK((*history)[1].kind == CardEventKind::debit);
  CHECK((*history)[1].note == "call 1234abcd route home");
  CHECK((*history)[2].units == 2);
  CHECK((*history)[3].kind == CardEventKind::password_set);
  CHECK((*history)[4].kind == CardEventKind::debit);
  CHECK((*history)[4].units == 5);
  CHECK((*history)[4].units_left == 0);
  CHECK(pg_card_history(*admin, 1, 4, 10).value().size() == 1);
}

TEST_CASE("a failed turn writes no debit, and the node's reads forget it") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  REQUIRE(pg_add_cards(*admin, {card(1, 10)}));
  Node node(conninfo);
  REQUIRE(node.cards().debit(1, 4, 1764900100, "").value().units_left == 6);
  // The committer's backend goes away inside the turn (as a server crash
  // would take it): the turn cannot commit.
  queue_statement<void>(node.accounts->committer().turn(), "SELECT pg_terminate_backend(pg_backend_pid())", {},
                        node.accounts->write_done<void>(), [](const PgRows&) -> Expected<void, PgError> { return {}; });
  CHECK(node.commit().has_value());
  CHECK(text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") == "10");
  CHECK(node.cards().find(1).value()->units_left == 10);
}

TEST_CASE("two nodes debiting one card never spend the same units") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  REQUIRE(pg_add_cards(*admin, {card(1, 10)}));
  Node a(conninfo);
  Node b(conninfo);
  // Both read 10 units and grant 6 before either commits.
  CHECK(a.cards().debit(1, 6, 1764900100, "node a").value().outcome == LedgerOutcome::done);
  CHECK(b.cards().debit(1, 6, 1764900100, "node b").value().outcome == LedgerOutcome::done);
  CHECK_FALSE(a.commit());
  CHECK_FALSE(b.commit());
  CHECK(text(*admin, "SELECT units_left FROM card_accounts WHERE serial = 1") == "0");
  CHECK(text(*admin, "SELECT sum(units) FROM card_history WHERE serial = 1 AND kind = 2") == "10");
  CHECK(a.store->debits_short() + b.store->debits_short() == 1);
  // The next period on either node sees the card empty.
  CHECK(a.cards().debit(1, 6, 1764900160, "").value().outcome == LedgerOutcome::no_units);
  CHECK(b.cards().debit(1, 6, 1764900160, "").value().outcome == LedgerOutcome::no_units);
}

TEST_CASE("revoked on PostgreSQL: refused to debits and password changes on every node, listed once") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  REQUIRE(pg_add_cards(*admin, {card(1, 10), card(2, 10)}));
  auto revoked = pg_revoke_card(*admin, 2, 1764900100, "lost");
  REQUIRE(revoked);
  CHECK(revoked->outcome == LedgerOutcome::done);
  CHECK(revoked->units_left == 10);
  CHECK(pg_revoke_card(*admin, 2, 1764900200, "again").value().outcome == LedgerOutcome::already);
  CHECK(pg_revoke_card(*admin, 3, 1764900200, "").value().outcome == LedgerOutcome::unknown_card);
  CHECK(pg_top_up_card(*admin, 2, 5, 1764900200, "").value().outcome == LedgerOutcome::revoked);
  CHECK(pg_revoked_card_serials(*admin).value() == std::vector<uint64_t>{2});
  Node node(conninfo);
  auto found = node.cards().find(2).value();
  REQUIRE(found);
  CHECK(found->revoked);
  CHECK(found->revoked_at == 1764900100);
  CHECK(node.cards().debit(2, 1, 1764900300, "").value().outcome == LedgerOutcome::revoked);
  CHECK(node.cards().set_password(2, "x", 1764900300, "").value().outcome == LedgerOutcome::revoked);
  CHECK_FALSE(node.accounts->writes_pending());
  CHECK(pg_card_history(*admin, 2, 0, 10).value().size() == 2);  // issued, revoked
}

TEST_CASE("card issue --pg's ledger calls: serials consecutive and never reused, a batch all or none") {
  std::string conninfo = migrated_database();
  auto admin = connect_to(conninfo);
  uint64_t first = pg_take_card_serials(*admin, 3).value();
  CHECK(first == 1);
  REQUIRE(pg_add_cards(*admin, {card(first, 5), card(first + 1, 5), card(first + 2, 5)}));
  CHECK(pg_take_card_serials(*admin, 1).value() == 4);  // taken, never added: not handed out again
  CHECK(pg_take_card_serials(*admin, 2).value() == 5);
  auto clash = pg_add_cards(*admin, {card(5, 5), card(2, 5)});
  REQUIRE_FALSE(clash);
  CHECK(clash.error() == "serial 2 is already in the ledger");
  CHECK(text(*admin, "SELECT count(*) FROM card_accounts") == "3");  // serial 5 rolled back with it
  CHECK(pg_find_card(*admin, 5).value() == std::nullopt);
  auto found = pg_find_card(*admin, 2).value();
  REQUIRE(found);
  CHECK(found->units_left == 5);
  CHECK(found->card_id == "TSU-2");
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
