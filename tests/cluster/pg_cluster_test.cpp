// Cluster mode's PostgreSQL side against a real server (tests/cluster/pg_server.hpp):
// migrations, the stores, group commit per turn, failed commits and a crash.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_card_ledger.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "cluster/pg/pg_turn.hpp"
#include "tests/cluster/pg_server.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using tsunagu::test::PgServer;
using tsunagu::test::connect_to;
using tsunagu::test::migrated_database;
using tsunagu::test::number;

namespace {

rendezvous::Account sample_account(const std::string& user_id) {
  rendezvous::Account account;
  account.user_id = user_id;
  account.password_hash = "scram-sha-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
  account.display_name = "Ada \"the\" {Lovelace}, \\ 日本";
  account.phone = "+81 3 1234";
  account.category = "bakery";
  account.publish = true;
  account.services = 0x5;
  account.static_address = proto::SocketAddress::parse("[2001:db8::7]:5060");
  account.created_at = 1764900000;
  account.presence_visibility = 2;
  account.addresses_shown = true;
  account.contacts = {"bob", "carol@acme", "a,b", "with \"quote\"", "NULL"};
  account.verified = true;
  account.admin = false;
  return account;
}

// Runs the turn on `connection` and requires it committed.
void commit(PgConnection& connection, PgTurn& turn) { REQUIRE(run_turn(connection, turn)); }

template <class T>
struct Answer {
  std::optional<Expected<T, PgError>> got;
  PgDone<T> sink() {
    return [this](Expected<T, PgError> result) { got.emplace(std::move(result)); };
  }
  const T& value() const {
    REQUIRE(got.has_value());
    REQUIRE_MESSAGE(got->has_value(), (got->has_value() ? "" : got->error().detail));
    return **got;
  }
  PgErrc error_code() const {
    REQUIRE(got.has_value());
    REQUIRE(!got->has_value());
    return got->error().code;
  }
};

const PgDone<bool> ignore_bool = [](Expected<bool, PgError>) {};

struct VoidAnswer {
  std::optional<Expected<void, PgError>> got;
  PgDone<void> sink() {
    return [this](Expected<void, PgError> result) { got.emplace(std::move(result)); };
  }
  bool ok() const { return got.has_value() && got->has_value(); }
};

}  // namespace

TEST_CASE("migrate takes an empty database to the latest schema, and running it again changes nothing") {
  std::string conninfo = PgServer::shared()->fresh_schema();
  REQUIRE(!conninfo.empty());
  auto connection = connect_to(conninfo);
  auto before = schema_version(*connection);
  REQUIRE(before);
  CHECK(*before == 0);
  CHECK(require_current_schema(*connection).error().code == PgErrc::schema_missing);

  auto first = migrate(*connection);
  REQUIRE_MESSAGE(first, (first ? "" : first.error().detail));
  CHECK(first->from == 0);
  CHECK(first->to == latest_schema_version());
  CHECK(first->applied.size() == static_cast<size_t>(latest_schema_version()));
  CHECK(*schema_version(*connection) == latest_schema_version());
  CHECK(require_current_schema(*connection).has_value());
  for (const char* table : {"accounts", "account_epoch", "removed_ids", "logins", "agents", "agent_routes",
                            "voicemail", "voicemail_data", "card_accounts", "card_history", "cluster_secrets"}) {
    auto present = connection->exec("SELECT to_regclass($1) IS NOT NULL AS present", {std::string(table)});
    REQUIRE(present);
    CHECK_MESSAGE(present->boolean(0, "present") == true, table);
  }
  // Version 1's, never used, dropped by version 7.
  CHECK(number(*connection, "SELECT count(*) FROM pg_tables "
                            "WHERE tablename = 'directory_profiles' AND schemaname = current_schema()") == 0);
  std::string applied_at =
      connection->exec("SELECT applied_at::text AS at FROM schema_migrations WHERE version = 1")->text(0, "at").value();

  auto second = migrate(*connection);
  REQUIRE(second);
  CHECK(second->applied.empty());
  CHECK(second->from == latest_schema_version());
  CHECK(number(*connection, "SELECT count(*) FROM schema_migrations") == latest_schema_version());
  CHECK(connection->exec("SELECT applied_at::text AS at FROM schema_migrations WHERE version = 1")->text(0, "at") ==
        applied_at);
}

TEST_CASE("a database migrated by a newer binary is refused, and left as it was") {
  auto connection = connect_to(migrated_database());
  int newer = latest_schema_version() + 1;
  REQUIRE(connection->exec("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')",
                           {std::to_string(newer)}));
  auto refused = migrate(*connection);
  REQUIRE(!refused);
  CHECK(refused.error().code == PgErrc::schema_too_new);
  CHECK(refused.error().detail.find("version " + std::to_string(newer)) != std::string::npos);
  CHECK(require_current_schema(*connection).error().code == PgErrc::schema_too_new);
  CHECK(number(*connection, "SELECT count(*) FROM schema_migrations") == newer);
}

TEST_CASE("accounts: create, find, update, list, count, logins and removal round trip") {
  auto connection = connect_to(migrated_database());
  PgAccountStore store;
  PgTurn turn;

  Answer<uint64_t> bumped;
  store.bump_epoch(turn, bumped.sink());
  commit(*connection, turn);
  CHECK(bumped.value() == 1);

  auto ada = sample_account("ada");
  Answer<bool> created, again;
  store.create(turn, ada, created.sink());
  store.create(turn, sample_account("ada"), again.sink());
  store.create(turn, sample_account("zed"), ignore_bool);
  commit(*connection, turn);
  CHECK(created.value() == true);
  CHECK(again.value() == false);

  Answer<std::optional<rendezvous::Account>> found, missing;
  store.find(turn, "ada", found.sink());
  store.find(turn, "nobody", missing.sink());
  commit(*connection, turn);
  ada.generation = 1;  // the epoch at creation
  REQUIRE(found.value().has_value());
  CHECK(*found.value() == ada);
  CHECK(!missing.value().has_value());

  ada.display_name = "Ada L.";
  ada.static_address.reset();
  ada.contacts.clear();
  ada.generation = 7;
  VoidAnswer updated;
  store.update(turn, ada, updated.sink());
  Answer<std::optional<rendezvous::Account>> refound;
  store.find(turn, "ada", refound.sink());
  commit(*connection, turn);
  CHECK(updated.ok());
  CHECK(*refound.value() == ada);

  Answer<std::vector<rendezvous::Account>> listed, tail;
  Answer<uint64_t> counted;
  store.create(turn, sample_account("Bob"), ignore_bool);
  store.list(turn, "", 10, listed.sink());
  store.list(turn, "b", 10, tail.sink());
  store.count(turn, counted.sink());
  commit(*connection, turn);
  // Byte order, as LMDB lists them: upper case before lower.
  REQUIRE(listed.value().size() == 3);
  CHECK(listed.value()[0].user_id == "Bob");
  CHECK(listed.value()[1].user_id == "ada");
  CHECK(listed.value()[2].user_id == "zed");
  REQUIRE(tail.value().size() == 1);
  CHECK(tail.value()[0].user_id == "zed");
  CHECK(counted.value() == 3);

  rendezvous::LoginRecord login;
  login.time = 1764900100;
  login.reported = {*proto::SocketAddress::parse("192.0.2.1:4000"), *proto::SocketAddress::parse("[::1]:4001")};
  login.observed = proto::SocketAddress::parse("198.51.100.9:61000");
  VoidAnswer recorded;
  Answer<std::optional<rendezvous::LoginRecord>> last;
  store.record_login(turn, "ada", login, recorded.sink());
  store.last_login(turn, "ada", last.sink());
  commit(*connection, turn);
  CHECK(recorded.ok());
  REQUIRE(last.value().has_value());
  CHECK(*last.value() == login);

  Answer<bool> removed, removed_again;
  Answer<std::optional<uint64_t>> when, never;
  Answer<uint64_t> epoch;
  Answer<std::optional<rendezvous::LoginRecord>> login_after;
  store.remove(turn, "ada", 1764900200, removed.sink());
  store.remove(turn, "ada", 1764900300, removed_again.sink());
  store.removed_at(turn, "ada", when.sink());
  store.removed_at(turn, "zed", never.sink());
  store.epoch(turn, epoch.sink());
  store.last_login(turn, "ada", login_after.sink());
  commit(*connection, turn);
  CHECK(removed.value() == true);
  CHECK(removed_again.value() == false);
  CHECK(when.value() == std::optional<uint64_t>(1764900200));
  CHECK(!never.value().has_value());
  CHECK(epoch.value() == 2);  // the bump above and the one removal, not the failed second one
  CHECK(!login_after.value().has_value());

  // Created again after the removal: its generation is the new epoch.
  Answer<bool> recreated;
  Answer<std::optional<rendezvous::Account>> reborn;
  store.create(turn, sample_account("ada"), recreated.sink());
  store.find(turn, "ada", reborn.sink());
  commit(*connection, turn);
  CHECK(recreated.value() == true);
  CHECK(reborn.value()->generation == 2);
}

TEST_CASE("card ledger: debits to exhaustion, top-up, balance, unknown card") {
  auto connection = connect_to(migrated_database());
  PgCardLedger ledger;
  PgTurn turn;
  rendezvous::CardAccount card;
  card.serial = 42;
  card.card_id = "TSU-0042";
  card.units_issued = 10;
  card.issued_at = 1764900000;
  card.expires_at = 1796436000;
  Answer<bool> added, twice;
  ledger.add(turn, card, added.sink());
  ledger.add(turn, card, twice.sink());
  commit(*connection, turn);
  CHECK(added.value());
  CHECK(!twice.value());

  Answer<rendezvous::LedgerResult> first, second, empty, topped, unknown;
  Answer<std::optional<uint64_t>> balance, no_balance;
  ledger.debit(turn, 42, 7, 1764900010, "call 1 to 4106@acme", first.sink());
  ledger.debit(turn, 42, 5, 1764900020, "call 2", second.sink());
  ledger.debit(turn, 42, 1, 1764900030, "call 3", empty.sink());
  ledger.top_up(turn, 42, 20, 1764900040, "shop", topped.sink());
  ledger.debit(turn, 99, 1, 1764900050, "", unknown.sink());
  ledger.balance(turn, 42, balance.sink());
  ledger.balance(turn, 99, no_balance.sink());
  commit(*connection, turn);
  CHECK(first.value().outcome == rendezvous::LedgerOutcome::done);
  CHECK(first.value().units_left == 3);
  CHECK(second.value().outcome == rendezvous::LedgerOutcome::exhausted);
  CHECK(second.value().units == 3);
  CHECK(second.value().units_left == 0);
  CHECK(empty.value().outcome == rendezvous::LedgerOutcome::no_units);
  CHECK(topped.value().units_left == 20);
  CHECK(unknown.value().outcome == rendezvous::LedgerOutcome::unknown_card);
  CHECK(balance.value() == std::optional<uint64_t>(20));
  CHECK(!no_balance.value().has_value());

  Answer<std::optional<rendezvous::CardAccount>> found;
  ledger.find(turn, 42, found.sink());
  commit(*connection, turn);
  REQUIRE(found.value().has_value());
  CHECK(found.value()->events == 4);  // issued, two debits, the top-up (no_units writes nothing)
  CHECK(number(*connection, "SELECT count(*) FROM card_history WHERE serial = 42") == 4);
  CHECK(number(*connection, "SELECT sum(units) FROM card_history WHERE serial = 42 AND kind = 2") == 10);
}

TEST_CASE("a turn's writes share one transaction: N creates, one xmin") {
  auto connection = connect_to(migrated_database());
  PgAccountStore store;
  PgTurn turn;
  constexpr int writes = 40;
  std::vector<Answer<bool>> answers(writes);
  for (int i = 0; i < writes; ++i) store.create(turn, sample_account("user" + std::to_string(i)), answers[i].sink());
  commit(*connection, turn);
  for (auto& answer : answers) CHECK(answer.value());
  // Every row carries the ID of the transaction that wrote it.
  CHECK(number(*connection, "SELECT count(DISTINCT xmin::text) FROM accounts") == 1);
  CHECK(number(*connection, "SELECT count(*) FROM accounts") == writes);
}

TEST_CASE("a statement refused on its own fails alone; the turn's other writes commit") {
  auto connection = connect_to(migrated_database());
  PgAccountStore store;
  PgTurn turn;
  Answer<bool> before, after;
  std::optional<PgResult> refused;
  store.create(turn, sample_account("before"), before.sink());
  turn.add("SELECT 1 / 0", {}, [&](PgResult result) { refused.emplace(std::move(result)); });
  store.create(turn, sample_account("after"), after.sink());
  auto statements = turn.take();
  auto outcome = execute_turn(*connection, statements);
  deliver(statements, outcome);
  CHECK(outcome.committed);
  CHECK(outcome.attempts == 2);
  CHECK(before.value());
  CHECK(after.value());
  REQUIRE(refused.has_value());
  REQUIRE(!refused->has_value());
  CHECK(refused->error().code == PgErrc::statement);
  CHECK(refused->error().sqlstate == "22012");  // division_by_zero
  CHECK(number(*connection, "SELECT count(*) FROM accounts") == 2);
}

TEST_CASE("a turn whose backend dies before COMMIT fails every write, writes nothing, and the next turn reconnects") {
  std::string conninfo = migrated_database();
  auto connection = connect_to(conninfo);
  PgAccountStore store;
  PgTurn turn;
  std::vector<Answer<bool>> answers(5);
  for (int i = 0; i < 3; ++i) store.create(turn, sample_account("lost" + std::to_string(i)), answers[i].sink());
  // The backend ends itself mid-transaction, after three writes ran: what
  // a server crash or an administrator's pg_terminate_backend does.
  std::optional<PgResult> terminated;
  turn.add("SELECT pg_terminate_backend(pg_backend_pid())", {}, [&](PgResult r) { terminated.emplace(std::move(r)); });
  store.create(turn, sample_account("lost3"), answers[3].sink());
  CHECK(!run_turn(*connection, turn));
  for (int i = 0; i < 4; ++i) CHECK(answers[i].error_code() == PgErrc::commit_failed);
  REQUIRE(terminated.has_value());
  CHECK(!terminated->has_value());

  auto reader = connect_to(conninfo);
  CHECK(number(*reader, "SELECT count(*) FROM accounts") == 0);

  store.create(turn, sample_account("kept"), answers[4].sink());
  commit(*connection, turn);  // reconnects first
  CHECK(answers[4].value());
  CHECK(number(*reader, "SELECT count(*) FROM accounts") == 1);
}

TEST_CASE("on a libuv loop: one transaction per turn, callbacks after COMMIT, a killed backend fails its turn") {
  std::string conninfo = migrated_database();
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto started = PgGroupCommitter::start(&loop, conninfo);
  REQUIRE_MESSAGE(started, (started ? "" : started.error().detail));
  auto& committer = **started;
  PgAccountStore store;
  auto observer = connect_to(conninfo);

  constexpr int writes = 25;
  int acknowledged = 0, failed = 0, phase = 0;
  int64_t rows_at_first_ack = -1;
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = nullptr;
  struct Context {
    PgGroupCommitter* committer;
    PgAccountStore* store;
    PgConnection* observer;
    int* acknowledged;
    int* failed;
    int* phase;
    int64_t* rows_at_first_ack;
  } context{&committer, &store, observer.get(), &acknowledged, &failed, &phase, &rows_at_first_ack};
  timer.data = &context;
  // Phase 0: one turn of `writes` creates. Phase 1 (after they are all
  // acknowledged): the worker's backend is terminated from another
  // connection, then a turn of writes that must all fail. Phase 2: a turn
  // that must commit again (the worker reconnects), then close.
  static auto queue_turn = [](Context& c, const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
      c.store->create(c.committer->turn(), sample_account(prefix + std::to_string(i)),
                      [&c, count](Expected<bool, PgError> result) {
                        if (result && *result) {
                          if (*c.rows_at_first_ack < 0) {
                            auto rows = c.observer->exec("SELECT count(*) AS n FROM accounts");
                            *c.rows_at_first_ack = rows ? rows->integer(0, "n").value_or(-2) : -3;
                          }
                          ++*c.acknowledged;
                        } else if (!result && result.error().code == PgErrc::commit_failed) {
                          ++*c.failed;
                        }
                        if (*c.acknowledged + *c.failed == count) {
                          *c.acknowledged = *c.failed = 0;
                          ++*c.phase;
                        }
                      });
    }
  };
  (void)queue_turn;
  uv_timer_start(&timer, [](uv_timer_t* handle) {
    auto& c = *static_cast<Context*>(handle->data);
    static int queued_phase = -1;
    if (*c.phase == queued_phase) return;  // the turn in flight has not answered yet
    queued_phase = *c.phase;
    if (*c.phase == 0) {
      queue_turn(c, "first", writes);
    } else if (*c.phase == 1) {
      CHECK(c.committer->turns_committed() == 1);
      auto killed = c.observer->exec("SELECT pg_terminate_backend($1::int) AS killed",
                                     {std::to_string(c.committer->backend_pid())});
      CHECK((killed && killed->boolean(0, "killed") == true));
      queue_turn(c, "doomed", 5);
    } else if (*c.phase == 2) {
      CHECK(c.committer->turns_failed() == 1);
      queue_turn(c, "again", 3);
    } else {
      uv_timer_stop(handle);
      c.committer->close();
      uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
    }
  }, 0, 5);
  // Bounded: the phases need a few dozen 5 ms ticks; 20 s of loop at most.
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  guard.data = &committer;
  uv_timer_start(&guard, [](uv_timer_t* handle) { uv_stop(handle->loop); }, 20000, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&guard));
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(phase == 3);
  CHECK(rows_at_first_ack == writes);  // the first callback ran after all of its turn was committed
  CHECK(committer.turns_committed() == 2);
  CHECK(committer.turns_failed() == 1);
  CHECK(number(*observer, "SELECT count(DISTINCT xmin::text) FROM accounts WHERE user_id LIKE 'first%'") == 1);
  CHECK(number(*observer, "SELECT count(*) FROM accounts WHERE user_id LIKE 'doomed%'") == 0);
  CHECK(number(*observer, "SELECT count(*) FROM accounts") == writes + 3);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer))) uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  committer.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("nothing acknowledged is lost when the server is killed with -9 and started again") {
  std::string conninfo = migrated_database();
  PgAccountStore store;
  PgCardLedger ledger;
  {
    auto connection = connect_to(conninfo);
    PgTurn turn;
    std::vector<Answer<bool>> answers(20);
    for (int i = 0; i < 20; ++i) store.create(turn, sample_account("durable" + std::to_string(i)), answers[i].sink());
    rendezvous::CardAccount card;
    card.serial = 7;
    card.card_id = "TSU-0007";
    card.units_issued = 100;
    Answer<bool> added;
    Answer<rendezvous::LedgerResult> debited;
    ledger.add(turn, card, added.sink());
    commit(*connection, turn);
    ledger.debit(turn, 7, 30, 1764900000, "before the crash", debited.sink());
    commit(*connection, turn);
    for (auto& answer : answers) REQUIRE(answer.value());
    REQUIRE(debited.value().units_left == 70);
  }
  PgServer::shared()->crash();
  REQUIRE(PgServer::shared()->restart());
  auto connection = connect_to(conninfo);
  PgTurn turn;
  Answer<uint64_t> counted;
  Answer<std::optional<uint64_t>> balance;
  Answer<std::optional<rendezvous::Account>> found;
  store.count(turn, counted.sink());
  ledger.balance(turn, 7, balance.sink());
  store.find(turn, "durable19", found.sink());
  commit(*connection, turn);
  CHECK(counted.value() == 20);
  CHECK(balance.value() == std::optional<uint64_t>(70));
  REQUIRE(found.value().has_value());
  auto expected = sample_account("durable19");
  CHECK(found.value()->contacts == expected.contacts);
}

TEST_CASE("`tsunagu-rendezvous cluster migrate` and `schema-version` against the server") {
  const char* program = std::getenv("TSUNAGU_RENDEZVOUS");
  if (program == nullptr) {
    MESSAGE("TSUNAGU_RENDEZVOUS not set (meson sets it): the CLI is not checked here");
    return;
  }
  std::string conninfo = PgServer::shared()->fresh_schema();
  REQUIRE(!conninfo.empty());
  auto run = [&](const std::string& command) {
    std::string line = std::string(program) + " cluster " + command + " --pg '" + conninfo + "' 2>&1";
    FILE* pipe = popen(line.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buffer[512];
    while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    int status = pclose(pipe);
    return std::pair<int, std::string>(WIFEXITED(status) ? WEXITSTATUS(status) : -1, output);
  };
  auto [unmigrated_code, unmigrated] = run("schema-version");
  CHECK(unmigrated_code == 1);
  CHECK(unmigrated.find("database: 0") != std::string::npos);
  auto [code, output] = run("migrate");
  CHECK(code == 0);
  CHECK_MESSAGE(output.find("version 0 -> " + std::to_string(latest_schema_version())) != std::string::npos, output);
  auto [again_code, again] = run("migrate");
  CHECK(again_code == 0);
  CHECK_MESSAGE(again.find("nothing applied") != std::string::npos, again);
  auto [version_code, version] = run("schema-version");
  CHECK(version_code == 0);
  CHECK(version.find("database: " + std::to_string(latest_schema_version())) != std::string::npos);
  auto connection = connect_to(conninfo);
  REQUIRE(connection->exec("INSERT INTO schema_migrations (version, name) VALUES (999, 'x.sql')"));
  auto [newer_code, newer] = run("migrate");
  CHECK(newer_code == 1);
  CHECK_MESSAGE(newer.find("newer than this binary") != std::string::npos, newer);
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
