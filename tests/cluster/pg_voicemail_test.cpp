// Voicemail on PostgreSQL against a real server (tests/cluster/pg_server.hpp):
// PgVoicemailBoxes as the node uses it, its writes in the account
// directory's turn (stored and deleted only once the turn commits, nothing
// stored when it does not), reads on the read connection, the quotas' usage
// and totals, chunked reads and the retention sweep.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_voicemail_boxes.hpp"
#include "tests/cluster/pg_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using tsunagu::test::end_backend_on;
using tsunagu::test::PgNodeFixture;
using tsunagu::test::text;

namespace {

Bytes pattern(size_t size) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((i * 7 + 3) & 0xff);
  return out;
}

// The node's mailboxes on the fixture's account directory, as `run --pg` has them.
struct Fixture : PgNodeFixture {
  Fixture() : boxes(std::make_unique<PgVoicemailBoxes>(*accounts)) {}
  std::unique_ptr<PgVoicemailBoxes> boxes;
};

}  // namespace

TEST_CASE("a message is stored in the turn's commit, listed, read in chunks, and deleted in a later turn") {
  Fixture f;
  Bytes message = pattern(20'000);
  auto id = f.boxes->add("bob", "alice", 1'700'000'000, message);
  REQUIRE(id);
  CHECK(f.accounts->writes_pending());
  // Not committed yet: nothing in PostgreSQL, the mailbox still empty.
  CHECK(text(*f.admin, "SELECT count(*) FROM voicemail") == "0");
  CHECK(f.boxes->list("bob", 0, 10).value().empty());
  CHECK_FALSE(f.commit().has_value());

  auto listed = f.boxes->list("bob", 0, 10);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front() == proto::VoicemailEntry{*id, 1'700'000'000, 20'000, "alice"});
  CHECK(f.boxes->list("bob", *id, 10).value().empty());
  CHECK(f.boxes->list("carol", 0, 10).value().empty());
  CHECK(f.boxes->find("bob", *id).value() == listed->front());
  CHECK_FALSE(f.boxes->find("carol", *id).value().has_value());  // another's mailbox: no such message

  Bytes joined;
  for (uint64_t offset = 0; offset < message.size(); offset += 8192) {
    auto chunk = f.boxes->read("bob", *id, offset, 8192);
    REQUIRE(chunk);
    REQUIRE(chunk->has_value());
    CHECK((*chunk)->size() == std::min<size_t>(8192, message.size() - offset));
    joined.insert(joined.end(), (*chunk)->begin(), (*chunk)->end());
  }
  CHECK(joined == message);
  CHECK(f.boxes->read("bob", *id, 20'000, 8192).value().value().empty());  // at the end: empty, as on LMDB
  CHECK_FALSE(f.boxes->read("carol", *id, 0, 8192).value().has_value());

  auto usage = f.boxes->usage("bob");
  REQUIRE(usage);
  CHECK(usage->messages == 1);
  CHECK(usage->bytes == 20'000);

  CHECK_FALSE(f.boxes->remove("carol", *id).value());  // not hers: nothing queued
  CHECK_FALSE(f.accounts->writes_pending());
  CHECK(f.boxes->remove("bob", *id).value());
  CHECK(f.boxes->find("bob", *id).value().has_value());  // until the commit
  CHECK_FALSE(f.commit().has_value());
  CHECK_FALSE(f.boxes->find("bob", *id).value().has_value());
  CHECK(text(*f.admin, "SELECT count(*) FROM voicemail_data") == "0");
  CHECK_FALSE(f.boxes->remove("bob", *id).value());
}

TEST_CASE("IDs grow; totals count every mailbox and those of one domain; the sweep deletes old messages only") {
  Fixture f;
  auto first = f.boxes->add("4106@acme", "alice", 100, pattern(10)).value();
  auto second = f.boxes->add("4107@acme", "alice", 200, pattern(20)).value();
  auto third = f.boxes->add("bob", "alice", 300, pattern(40)).value();
  auto fourth = f.boxes->add("x@acme.jp", "alice", 400, pattern(80)).value();
  CHECK(first < second);
  CHECK(second < third);
  CHECK(third < fourth);
  CHECK_FALSE(f.commit().has_value());
  auto totals = f.boxes->totals("acme");
  REQUIRE(totals);
  CHECK(totals->all.messages == 4);
  CHECK(totals->all.bytes == 150);
  CHECK(totals->domain.messages == 2);
  CHECK(totals->domain.bytes == 30);
  CHECK(f.boxes->totals("").value().domain.messages == 0);
  CHECK(f.boxes->totals("acme.jp").value().domain.messages == 1);

  CHECK(f.boxes->expire(250, 1).value() == 1);  // at most `max`, oldest first
  CHECK(f.boxes->expire(250, 100).value() == 1);
  CHECK(f.boxes->expire(250, 100).value() == 0);
  CHECK(f.boxes->totals("").value().all.messages == 2);
  CHECK(f.boxes->find("bob", third).value().has_value());
}

TEST_CASE("a turn that does not commit stores nothing and answers with an error") {
  Fixture f;
  end_backend_on(*f.admin, "INSERT", "voicemail", "NEW.recipient = 'doomed'");
  REQUIRE(f.boxes->add("doomed", "alice", 1, pattern(100)));
  CHECK(f.commit().has_value());
  CHECK(text(*f.admin, "SELECT count(*) FROM voicemail") == "0");
  CHECK(text(*f.admin, "SELECT count(*) FROM voicemail_data") == "0");
  // The committer reconnects; the next turn stores.
  REQUIRE(f.boxes->add("bob", "alice", 1, pattern(100)));
  CHECK_FALSE(f.commit().has_value());
  CHECK(f.boxes->usage("bob").value().messages == 1);
}

TEST_CASE("removing an account (user remove --pg) deletes its mailbox with it") {
  Fixture f;
  REQUIRE(f.admin->exec("INSERT INTO accounts (user_id, password_hash, created_at, generation) VALUES "
                        "('bob', 'x', 1, 0), ('carol', 'x', 1, 0)"));
  REQUIRE(f.boxes->add("bob", "alice", 1, pattern(10)));
  REQUIRE(f.boxes->add("carol", "alice", 1, pattern(10)));
  CHECK_FALSE(f.commit().has_value());
  PgAccountStore store;
  PgTurn turn;
  std::optional<Expected<bool, PgError>> removed;
  store.remove(turn, "bob", 5, [&](Expected<bool, PgError> r) { removed.emplace(std::move(r)); });
  REQUIRE(run_turn(*f.admin, turn));
  REQUIRE(removed);
  CHECK(removed->value());
  CHECK(f.boxes->usage("bob").value().messages == 0);
  CHECK(f.boxes->usage("carol").value().messages == 1);
  CHECK(text(*f.admin, "SELECT count(*) FROM voicemail_data") == "1");
}

int main(int argc, char** argv) { return tsunagu::test::run_tests_or_skip(argc, argv); }
