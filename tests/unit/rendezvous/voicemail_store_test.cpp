#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>

#include "rendezvous/account_store.hpp"
#include "rendezvous/voicemail_store.hpp"
#include "../storage/temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

using test::TempDir;

namespace {

Bytes bytes_of(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  return b;
}

}  // namespace

TEST_CASE("voicemail store: add, list, read in chunks, usage, remove; survives reopening") {
  TempDir dir;
  Bytes message = bytes_of(20'000, 3);
  {
    auto store = AccountStore::open(dir.path, uint64_t{32} << 20);
    REQUIRE(store.has_value());
    auto vm = VoicemailStore::open((*store)->environment());
    REQUIRE(vm.has_value());
    auto txn = (*store)->begin_write();
    REQUIRE(txn.has_value());
    CHECK(*vm->add(*txn, "bob", "alice", 100, message) == 1);
    CHECK(*vm->add(*txn, "bob", "carol", 200, bytes_of(10, 1)) == 2);
    CHECK(*vm->add(*txn, "bob.x", "carol", 300, bytes_of(5, 1)) == 3);  // a mailbox whose name starts with bob
    REQUIRE(txn->commit().has_value());
  }
  auto store = AccountStore::open(dir.path, uint64_t{32} << 20);
  REQUIRE(store.has_value());
  auto vm = VoicemailStore::open((*store)->environment());
  REQUIRE(vm.has_value());
  auto txn = (*store)->begin_write();
  REQUIRE(txn.has_value());
  auto list = vm->list(*txn, "bob", 0, 10);
  REQUIRE(list.has_value());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0] == proto::VoicemailEntry{1, 100, 20'000, "alice"});
  CHECK((*list)[1].caller == "carol");
  CHECK(vm->list(*txn, "bob", 1, 10)->size() == 1);
  auto usage = vm->usage(*txn, "bob");
  CHECK(usage->messages == 2);
  CHECK(usage->bytes == 20'010);
  Bytes read_back;
  for (uint64_t offset = 0; offset < message.size();) {
    auto chunk = vm->read(*txn, "bob", 1, offset, 8192);
    REQUIRE(chunk.has_value());
    REQUIRE(chunk->has_value());
    REQUIRE(!(*chunk)->empty());
    read_back.insert(read_back.end(), (*chunk)->begin(), (*chunk)->end());
    offset += (*chunk)->size();
  }
  CHECK(read_back == message);
  CHECK(!vm->read(*txn, "alice", 1, 0, 10)->has_value());  // not alice's message
  CHECK(*vm->remove(*txn, "bob", 1));
  CHECK_FALSE(*vm->remove(*txn, "bob", 1));
  CHECK(*vm->add(*txn, "bob", "alice", 400, bytes_of(4, 0)) == 4);  // IDs are never reused
  CHECK(*vm->expire(*txn, 350, 100) == 2);  // messages 2 (t=200) and 3 (t=300)
  CHECK(vm->list(*txn, "bob", 0, 10)->size() == 1);
  CHECK(vm->list(*txn, "bob.x", 0, 10)->empty());
}

TEST_CASE("voicemail record: round trip, version and size checked") {
  proto::VoicemailEntry e{7, 1'700'000'000, 1234, "alice"};
  Bytes b = encode_voicemail_record(e);
  REQUIRE(decode_voicemail_record(b).has_value());
  CHECK(*decode_voicemail_record(b) == e);
  Bytes wrong_version = b;
  wrong_version[0] = std::byte{2};
  CHECK_FALSE(decode_voicemail_record(wrong_version).has_value());
  for (size_t n = 0; n < b.size(); ++n) CHECK_FALSE(decode_voicemail_record(ByteView(b).first(n)).has_value());
  Bytes longer = b;
  longer.push_back(std::byte{0});
  CHECK_FALSE(decode_voicemail_record(longer).has_value());
}

TEST_CASE("voicemail store: remove_mailbox deletes every message of one mailbox and no other (issue 11)") {
  TempDir dir;
  std::unique_ptr<AccountStore> store = std::move(AccountStore::open(dir.path, uint64_t{32} << 20).value());
  std::optional<VoicemailStore> vm(VoicemailStore::open(store->environment()).value());
  std::optional<storage::Transaction> txn(store->begin_write().value());
  for (int i = 0; i < 3; ++i) REQUIRE(vm->add(*txn, "bob", "alice", 100, bytes_of(50, 1)).has_value());
  REQUIRE(vm->add(*txn, "bob.x", "alice", 100, bytes_of(50, 2)).has_value());
  REQUIRE(vm->add(*txn, "bo", "alice", 100, bytes_of(50, 3)).has_value());
  CHECK(*vm->remove_mailbox(*txn, "bob") == 3);
  CHECK(vm->list(*txn, "bob", 0, 10)->empty());
  CHECK(vm->read(*txn, "bob", 1, 0, 10)->has_value() == false);
  CHECK(vm->list(*txn, "bob.x", 0, 10)->size() == 1);
  CHECK(vm->list(*txn, "bo", 0, 10)->size() == 1);
  CHECK(*vm->remove_mailbox(*txn, "bob") == 0);
}

TEST_CASE("voicemail store: remove_mailboxes_inside deletes the mailboxes of a domain or number prefix only (issue 11)") {
  TempDir dir;
  std::unique_ptr<AccountStore> store = std::move(AccountStore::open(dir.path, uint64_t{32} << 20).value());
  std::optional<VoicemailStore> vm(VoicemailStore::open(store->environment()).value());
  std::optional<storage::Transaction> txn(store->begin_write().value());
  for (std::string box : {"4106@acme", "4107@acme", "bob@acme.example", "alice", "+81-6-1234-0001", "+81-6-9999-0001",
                          "+81-6-1234-9@globex"})
    REQUIRE(vm->add(*txn, box, "carol", 100, bytes_of(20, 4)).has_value());
  CHECK(*vm->remove_mailboxes_inside(*txn, "acme") == 2);
  CHECK(vm->list(*txn, "4106@acme", 0, 10)->empty());
  CHECK(vm->list(*txn, "bob@acme.example", 0, 10)->size() == 1);
  CHECK(*vm->remove_mailboxes_inside(*txn, "+81-6-1234-") == 1);
  CHECK(vm->list(*txn, "+81-6-9999-0001", 0, 10)->size() == 1);
  CHECK(vm->list(*txn, "+81-6-1234-9@globex", 0, 10)->size() == 1);
  CHECK(vm->list(*txn, "alice", 0, 10)->size() == 1);
}

TEST_CASE("voicemail store: totals count the whole store and the mailboxes of one domain together") {
  TempDir dir;
  auto store = AccountStore::open(dir.path, uint64_t{32} << 20);
  REQUIRE(store.has_value());
  auto vm = VoicemailStore::open((*store)->environment());
  REQUIRE(vm.has_value());
  auto txn = (*store)->begin_write();
  REQUIRE(txn.has_value());
  REQUIRE(vm->add(*txn, "4106@acme", "x", 1, bytes_of(100, 1)).has_value());
  REQUIRE(vm->add(*txn, "4107@acme", "x", 1, bytes_of(200, 1)).has_value());
  REQUIRE(vm->add(*txn, "4107@acme.example", "x", 1, bytes_of(400, 1)).has_value());  // another domain
  REQUIRE(vm->add(*txn, "bob", "x", 1, bytes_of(800, 1)).has_value());
  auto totals = vm->totals(*txn, "acme");
  REQUIRE(totals.has_value());
  CHECK(totals->all.messages == 4);
  CHECK(totals->all.bytes == 1500);
  CHECK(totals->domain.messages == 2);
  CHECK(totals->domain.bytes == 300);
  CHECK(vm->totals(*txn, "")->domain.bytes == 0);
}
