#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "rendezvous/account_store.hpp"
#include "../storage/temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using tsunagu::proto::SocketAddress;

using test::TempDir;

namespace {

constexpr uint64_t test_map_size = uint64_t{16} << 20;

std::unique_ptr<AccountStore> open_store(const TempDir& dir) {
  auto store = AccountStore::open(dir.path, test_map_size);
  REQUIRE(store.has_value());
  return std::move(*store);
}

Account account(std::string id) {
  Account a;
  a.user_id = std::move(id);
  a.password_hash = "$scrypt$ln=10,r=8,p=1$AAAA$BBBB";
  a.display_name = "Name of " + a.user_id;
  a.created_at = 1'700'000'000;
  return a;
}

}  // namespace

TEST_CASE("a created account is found after commit and after the store is reopened") {
  TempDir dir;
  Account alice = account("alice");
  alice.static_address = SocketAddress::v4({203, 0, 113, 7}, 5060);
  {
    auto store = open_store(dir);
    auto txn = store->begin_write();
    REQUIRE(txn.has_value());
    auto created = store->create(*txn, alice);
    REQUIRE(created.has_value());
    CHECK(*created);
    REQUIRE(txn->commit().has_value());
  }
  auto store = open_store(dir);
  auto txn = store->begin_read();
  REQUIRE(txn.has_value());
  auto found = store->find(*txn, "alice");
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  CHECK(**found == alice);
}

TEST_CASE("create refuses a taken user ID and keeps the first account") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  REQUIRE(txn.has_value());
  REQUIRE(*store->create(*txn, account("alice")));
  Account impostor = account("alice");
  impostor.display_name = "impostor";
  auto again = store->create(*txn, impostor);
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);
  CHECK((*store->find(*txn, "alice"))->display_name == "Name of alice");
}

TEST_CASE("find of an unknown user gives an empty optional, not an error") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_read();
  REQUIRE(txn.has_value());
  auto found = store->find(*txn, "nobody");
  REQUIRE(found.has_value());
  CHECK_FALSE(found->has_value());
  auto login = store->last_login(*txn, "nobody");
  REQUIRE(login.has_value());
  CHECK_FALSE(login->has_value());
}

TEST_CASE("an aborted transaction leaves no account behind") {
  TempDir dir;
  auto store = open_store(dir);
  {
    auto txn = store->begin_write();
    REQUIRE(*store->create(*txn, account("alice")));
  }
  auto txn = store->begin_read();
  CHECK_FALSE(store->find(*txn, "alice")->has_value());
  CHECK(*store->count(*txn) == 0);
}

TEST_CASE("update replaces an account's fields") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  REQUIRE(*store->create(*txn, account("alice")));
  Account changed = account("alice");
  changed.display_name = "Alice Liddell";
  changed.publish = true;
  changed.services = 3;
  changed.static_address = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 5061);
  REQUIRE(store->update(*txn, changed).has_value());
  CHECK(**store->find(*txn, "alice") == changed);
}

TEST_CASE("remove deletes the account and its login record and reports absence after") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  REQUIRE(*store->create(*txn, account("alice")));
  REQUIRE(store->record_login(*txn, "alice", LoginRecord{5, {}, std::nullopt}).has_value());
  auto removed = store->remove(*txn, "alice", 1'700'000'500);
  REQUIRE(removed.has_value());
  CHECK(*removed);
  CHECK_FALSE(store->find(*txn, "alice")->has_value());
  CHECK_FALSE(store->last_login(*txn, "alice")->has_value());
  auto again = store->remove(*txn, "alice", 1'700'000'600);
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);
}

TEST_CASE("list returns accounts in ID order from the start key up to the limit") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  for (auto id : {"dave", "alice", "carol", "bob", "erin"}) REQUIRE(*store->create(*txn, account(id)));
  CHECK(*store->count(*txn) == 5);

  auto from_b = store->list(*txn, "b", 3);
  REQUIRE(from_b.has_value());
  REQUIRE(from_b->size() == 3);
  CHECK((*from_b)[0].user_id == "bob");
  CHECK((*from_b)[1].user_id == "carol");
  CHECK((*from_b)[2].user_id == "dave");

  auto all = store->list(*txn, "", 100);
  REQUIRE(all.has_value());
  CHECK(all->size() == 5);
  CHECK(all->front().user_id == "alice");
  CHECK(all->back().user_id == "erin");

  auto past_end = store->list(*txn, "zzz", 10);
  REQUIRE(past_end.has_value());
  CHECK(past_end->empty());
}

TEST_CASE("a login record is stored per user and overwritten by the next login") {
  TempDir dir;
  auto store = open_store(dir);
  LoginRecord first{100, {SocketAddress::v4({192, 168, 1, 20}, 5060)}, SocketAddress::v4({198, 51, 100, 9}, 40000)};
  LoginRecord second{200, {}, SocketAddress::v4({198, 51, 100, 10}, 40001)};
  {
    auto txn = store->begin_write();
    REQUIRE(*store->create(*txn, account("alice")));
    REQUIRE(store->record_login(*txn, "alice", first).has_value());
    REQUIRE(txn->commit().has_value());
  }
  {
    auto txn = store->begin_read();
    CHECK(**store->last_login(*txn, "alice") == first);
  }
  {
    auto txn = store->begin_write();
    REQUIRE(store->record_login(*txn, "alice", second).has_value());
    REQUIRE(txn->commit().has_value());
  }
  auto txn = store->begin_read();
  CHECK(**store->last_login(*txn, "alice") == second);
  CHECK(*store->count(*txn) == 1);  // login records are not accounts
}

TEST_CASE("an unreadable account record is reported as corrupted, not as a missing user") {
  TempDir dir;
  {
    auto store = open_store(dir);
    auto txn = store->begin_write();
    REQUIRE(*store->create(*txn, account("alice")));
    REQUIRE(txn->commit().has_value());
  }
  {
    // Overwrite the record with bytes of a foreign format, as a damaged file would hold.
    storage::Environment::Options options;
    options.map_size = test_map_size;
    auto env = storage::Environment::open(dir.path, options);
    REQUIRE(env.has_value());
    auto db = (*env)->open_database("accounts");
    REQUIRE(db.has_value());
    auto txn = (*env)->begin_write();
    REQUIRE(txn.has_value());
    REQUIRE(txn->put(*db, as_bytes("alice"), as_bytes("\x07garbage")).has_value());
    REQUIRE(txn->put(*db, as_bytes("bob"), as_bytes("\x09more garbage")).has_value());
    REQUIRE(txn->commit().has_value());
  }
  auto store = open_store(dir);
  auto txn = store->begin_read();
  auto found = store->find(*txn, "alice");
  REQUIRE_FALSE(found.has_value());
  CHECK(found.error().code == storage::StoreErrc::corrupted);
  CHECK(found.error().detail.find("alice") != std::string::npos);
  auto listed = store->list(*txn, "", 10);
  REQUIRE_FALSE(listed.has_value());
  CHECK(listed.error().code == storage::StoreErrc::corrupted);
}

TEST_CASE("opening a store in a missing directory is an error") {
  auto store = AccountStore::open("/nonexistent/tsunagu-test-dir", test_map_size);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == storage::StoreErrc::not_found);
}

TEST_CASE("ids_inside finds the accounts inside a domain or under a number prefix") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  REQUIRE(txn.has_value());
  for (std::string id : {"alice", "4106@acme", "mallory@acme", "bob@acme.example", "+81-6-1234-0001",
                         "+81-6-1234-9@acme", "+81-6-9999-0001"})
    REQUIRE(*store->create(*txn, account(id)));
  auto domain = store->ids_inside(*txn, "acme", 10);
  REQUIRE(domain.has_value());
  CHECK(*domain == std::vector<std::string>{"+81-6-1234-9@acme", "4106@acme", "mallory@acme"});
  auto prefix = store->ids_inside(*txn, "+81-6-1234-", 10);
  REQUIRE(prefix.has_value());
  CHECK(*prefix == std::vector<std::string>{"+81-6-1234-0001"});
  auto limited = store->ids_inside(*txn, "acme", 1);
  REQUIRE(limited.has_value());
  CHECK(limited->size() == 1);
}

TEST_CASE("remove records when an ID went and moves the epoch on; create stamps the current epoch (issue 11)") {
  TempDir dir;
  auto store = open_store(dir);
  auto txn = store->begin_write();
  REQUIRE(txn.has_value());
  CHECK(*store->epoch(*txn) == 0);
  REQUIRE(*store->create(*txn, account("alice")));
  CHECK((*store->find(*txn, "alice"))->generation == 0);
  CHECK_FALSE(store->removed_at(*txn, "alice")->has_value());
  REQUIRE(*store->remove(*txn, "alice", 1'700'000'500));
  CHECK(*store->removed_at(*txn, "alice") == std::optional<uint64_t>(1'700'000'500));
  CHECK(*store->epoch(*txn) == 1);
  // Removing nobody moves nothing.
  CHECK_FALSE(*store->remove(*txn, "nobody", 1'700'000'600));
  CHECK(*store->epoch(*txn) == 1);
  CHECK_FALSE(store->removed_at(*txn, "nobody")->has_value());
  // The ID made again is another generation than any login of its first owner.
  REQUIRE(*store->create(*txn, account("alice")));
  CHECK((*store->find(*txn, "alice"))->generation == 1);
  CHECK(*store->bump_epoch(*txn) == 2);
  REQUIRE(txn->commit().has_value());
  auto read = store->begin_read();
  CHECK(*store->epoch(*read) == 2);
}
