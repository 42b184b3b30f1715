#include "rendezvous/card_ledger.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "../storage/temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

using test::TempDir;

namespace {

// A real LMDB environment and the ledger in it.
struct LedgerFixture {
  std::unique_ptr<storage::Environment> env;
  CardLedger ledger;

  explicit LedgerFixture(const std::string& dir) {
    auto opened = storage::Environment::open(dir, storage::Environment::Options{uint64_t{16} << 20, 8, 16});
    REQUIRE(opened.has_value());
    env = std::move(*opened);
    auto made = CardLedger::open(*env);
    REQUIRE(made.has_value());
    ledger = *made;
  }
  storage::Transaction write() {
    auto txn = env->begin_write();
    REQUIRE(txn.has_value());
    return std::move(*txn);
  }
  storage::Transaction read() {
    auto txn = env->begin_read();
    REQUIRE(txn.has_value());
    return std::move(*txn);
  }
};

CardAccount account(uint64_t serial, uint64_t units) {
  CardAccount a;
  a.serial = serial;
  a.card_id = "20261205-0007-" + std::string(6 - std::to_string(serial).size(), '0') + std::to_string(serial);
  a.password_hash = "$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA";
  a.units_issued = units;
  a.issued_at = 1'796'000'000;
  a.expires_at = 1'830'000'000;
  return a;
}

LedgerResult must(const Expected<LedgerResult, storage::StoreError>& result) {
  REQUIRE(result.has_value());
  return *result;
}

}  // namespace

TEST_CASE("card ledger: serials are consecutive from 1 and never reused, even after reopening") {
  TempDir dir;
  {
    LedgerFixture f(dir.path);
    auto txn = f.write();
    CHECK(*f.ledger.allocate_serials(txn, 10) == 1);
    CHECK(*f.ledger.allocate_serials(txn, 5) == 11);
    REQUIRE(txn.commit().has_value());
  }
  LedgerFixture f(dir.path);
  auto txn = f.write();
  CHECK(*f.ledger.allocate_serials(txn, 1) == 16);
}

TEST_CASE("card ledger: a card is added once with its units and an issued event") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto txn = f.write();
  CHECK(*f.ledger.add(txn, account(1, 100)) == true);
  CHECK(*f.ledger.add(txn, account(1, 999)) == false);
  auto found = f.ledger.find(txn, 1);
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  CHECK((*found)->units_left == 100);
  CHECK((*found)->card_id == "20261205-0007-000001");
  CHECK_FALSE((*found)->revoked);
  CHECK_FALSE(f.ledger.find(txn, 2)->has_value());
  auto history = f.ledger.history(txn, 1, 0, 10);
  REQUIRE(history->size() == 1);
  CHECK((*history)[0].kind == CardEventKind::issued);
  CHECK((*history)[0].units == 100);
}

TEST_CASE("card ledger: debits add up exactly; the last one takes what is left; then there are no units") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto txn = f.write();
  REQUIRE(*f.ledger.add(txn, account(7, 20)));
  uint64_t debited = 0;
  for (int minute = 0; minute < 6; ++minute) {
    LedgerResult r = must(f.ledger.debit(txn, 7, 3, 1'796'000'100 + minute * 60, "call 1 via a-net"));
    CHECK(r.outcome == LedgerOutcome::done);
    debited += r.units;
  }
  CHECK(debited == 18);
  LedgerResult last = must(f.ledger.debit(txn, 7, 3, 1'796'000'500, "call 1 via a-net"));
  CHECK(last.outcome == LedgerOutcome::exhausted);
  CHECK(last.units == 2);
  CHECK(last.units_left == 0);
  CHECK(must(f.ledger.debit(txn, 7, 1, 1'796'000'600, "")).outcome == LedgerOutcome::no_units);
  CHECK(must(f.ledger.debit(txn, 8, 1, 1'796'000'600, "")).outcome == LedgerOutcome::unknown_card);
  auto history = f.ledger.history(txn, 7, 0, 100);
  REQUIRE(history->size() == 8);  // issued, 7 debits; the refused one wrote nothing
  CHECK((*history)[7].units == 2);
  CHECK((*history)[7].units_left == 0);
  CHECK((*history)[1].note == "call 1 via a-net");
}

TEST_CASE("card ledger: a top-up adds units; a revoked card takes neither debits nor top-ups") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto txn = f.write();
  REQUIRE(*f.ledger.add(txn, account(3, 10)));
  LedgerResult topped = must(f.ledger.top_up(txn, 3, 50, 1'796'000'100, "shop 12"));
  CHECK(topped.outcome == LedgerOutcome::done);
  CHECK(topped.units_left == 60);
  CHECK(must(f.ledger.revoke(txn, 3, 1'796'000'200, "reported stolen")).outcome == LedgerOutcome::done);
  CHECK(must(f.ledger.revoke(txn, 3, 1'796'000'300, "")).outcome == LedgerOutcome::already);
  CHECK(must(f.ledger.debit(txn, 3, 1, 1'796'000'400, "")).outcome == LedgerOutcome::revoked);
  CHECK(must(f.ledger.top_up(txn, 3, 1, 1'796'000'400, "")).outcome == LedgerOutcome::revoked);
  auto found = *f.ledger.find(txn, 3);
  CHECK(found->revoked);
  CHECK(found->revoked_at == 1'796'000'200);
  CHECK(found->units_left == 60);
}

TEST_CASE("card ledger: the holder's password replaces the hash, with a password event; a revoked card keeps its own") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto txn = f.write();
  REQUIRE(*f.ledger.add(txn, account(4, 10)));
  REQUIRE(*f.ledger.add(txn, account(5, 10)));
  CHECK(must(f.ledger.set_password(txn, 4, "$scrypt$holder", 1'796'000'100, "set by the holder")).outcome ==
        LedgerOutcome::done);
  auto found = *f.ledger.find(txn, 4);
  CHECK(found->password_hash == "$scrypt$holder");
  CHECK(found->password_set_at == 1'796'000'100);
  CHECK((*f.ledger.find(txn, 5))->password_set_at == 0);  // the printed password still in force
  CHECK(found->units_left == 10);
  auto events = *f.ledger.history(txn, 4, 0, 10);
  REQUIRE(events.size() == 2);
  CHECK(events[1].kind == CardEventKind::password_set);
  CHECK(events[1].time == 1'796'000'100);
  CHECK(std::string(card_event_name(events[1].kind)) == "password");
  // The event's record decodes (kind 5 is known to the codec).
  CHECK(decode_card_event(encode_card_event(events[1]), 1) == events[1]);

  CHECK(must(f.ledger.revoke(txn, 5, 1'796'000'200, "")).outcome == LedgerOutcome::done);
  CHECK(must(f.ledger.set_password(txn, 5, "$scrypt$thief", 1'796'000'300, "")).outcome == LedgerOutcome::revoked);
  CHECK((*f.ledger.find(txn, 5))->password_hash == account(5, 10).password_hash);
  CHECK(must(f.ledger.set_password(txn, 99, "$scrypt$x", 1'796'000'300, "")).outcome == LedgerOutcome::unknown_card);
}

TEST_CASE("card ledger: the revocation list holds every revoked serial in order") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto txn = f.write();
  for (uint64_t serial = 1; serial <= 5; ++serial) REQUIRE(*f.ledger.add(txn, account(serial, 1)));
  REQUIRE(must(f.ledger.revoke(txn, 4, 1, "")).outcome == LedgerOutcome::done);
  REQUIRE(must(f.ledger.revoke(txn, 2, 1, "")).outcome == LedgerOutcome::done);
  CHECK(*f.ledger.revoked_serials(txn) == std::vector<uint64_t>{2, 4});
}

TEST_CASE("card ledger: committed debits survive reopening; an aborted transaction leaves nothing") {
  TempDir dir;
  {
    LedgerFixture f(dir.path);
    auto txn = f.write();
    REQUIRE(*f.ledger.add(txn, account(1, 100)));
    must(f.ledger.debit(txn, 1, 30, 1'796'000'100, "committed"));
    REQUIRE(txn.commit().has_value());
    auto aborted = f.write();
    must(f.ledger.debit(aborted, 1, 50, 1'796'000'200, "aborted"));
    aborted.abort();
  }
  LedgerFixture f(dir.path);
  auto txn = f.read();
  auto found = *f.ledger.find(txn, 1);
  REQUIRE(found.has_value());
  CHECK(found->units_left == 70);
  CHECK(found->events == 2);
  auto history = *f.ledger.history(txn, 1, 1, 10);
  REQUIRE(history.size() == 1);
  CHECK(history[0].note == "committed");
}

TEST_CASE("card ledger records: round trip; every truncated prefix, a wrong version and extra bytes are refused") {
  CardAccount a = account(9, 1234);
  a.units_left = 1000;
  a.revoked = true;
  a.revoked_at = 1'796'000'999;
  a.events = 17;
  a.password_set_at = 1'796'000'500;
  Bytes record = encode_card_account(a);
  CHECK(decode_card_account(record, 9) == a);
  // A record from before password_set_at ends 8 bytes sooner: it decodes with
  // -1 (CardLedger::find reads the history for it); every other prefix is refused.
  const size_t before_field = record.size() - 8;
  for (size_t n = 0; n < record.size(); ++n)
    if (n != before_field) CHECK_FALSE(decode_card_account(ByteView(record).first(n), 9));
  auto legacy = decode_card_account(ByteView(record).first(before_field), 9);
  REQUIRE(legacy.has_value());
  CHECK(legacy->password_set_at == -1);
  Bytes negative = record;  // written with the field, it is never negative
  for (size_t i = record.size() - 8; i < record.size(); ++i) negative[i] = std::byte{0xFF};
  CHECK_FALSE(decode_card_account(negative, 9));
  Bytes longer = record;
  longer.push_back(std::byte{0});
  CHECK_FALSE(decode_card_account(longer, 9));
  Bytes other_version = record;
  other_version[0] = std::byte{2};
  CHECK_FALSE(decode_card_account(other_version, 9));

  CardEvent e{4, CardEventKind::debit, 1'796'000'000, 3, 997, "call 12 via kansai-net"};
  Bytes event = encode_card_event(e);
  CHECK(decode_card_event(event, 4) == e);
  for (size_t n = 0; n < event.size(); ++n) CHECK_FALSE(decode_card_event(ByteView(event).first(n), 4));
  Bytes bad_kind = event;
  bad_kind[1] = std::byte{9};
  CHECK_FALSE(decode_card_event(bad_kind, 4));
}

TEST_CASE("card ledger: a record written before password_set_at takes it from the history's password event") {
  TempDir dir;
  LedgerFixture f(dir.path);
  auto accounts = f.env->open_database("card_accounts");  // before the write transaction, as the ledger does
  REQUIRE(accounts.has_value());
  auto txn = f.write();
  REQUIRE(*f.ledger.add(txn, account(6, 10)));
  REQUIRE(*f.ledger.add(txn, account(7, 10)));
  must(f.ledger.set_password(txn, 6, "$scrypt$holder", 1'796'000'100, ""));
  must(f.ledger.debit(txn, 6, 1, 1'796'000'200, ""));
  // Both records rewritten as the older code wrote them: without the last field.
  for (uint64_t serial : {6, 7}) {
    Bytes record = encode_card_account(**f.ledger.find(txn, serial));
    record.resize(record.size() - 8);
    Bytes key(8);
    for (int i = 0; i < 8; ++i) key[i] = std::byte(static_cast<uint8_t>(serial >> (56 - 8 * i)));
    REQUIRE(txn.put(*accounts, key, record).has_value());
  }
  CHECK((*f.ledger.find(txn, 6))->password_set_at == 1'796'000'100);
  CHECK((*f.ledger.find(txn, 7))->password_set_at == 0);
}
