#include <doctest/doctest.h>
#include <stdlib.h>
#include <lmdb.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>

#include "storage/lmdb_store.hpp"
#include "temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::storage;

using test::TempDir;

TEST_CASE("a committed write is read back after the environment is reopened") {
  TempDir dir;
  {
    auto env = Environment::open(dir.path);
    REQUIRE(env);
    auto db = (*env)->open_database("accounts");
    REQUIRE(db);
    auto txn = (*env)->begin_write();
    REQUIRE(txn);
    REQUIRE(txn->put(*db, as_bytes("alice"), as_bytes("row")));
    REQUIRE(txn->commit());
  }
  auto env = Environment::open(dir.path);
  REQUIRE(env);
  auto db = (*env)->open_database("accounts");
  auto txn = (*env)->begin_read();
  auto value = txn->get(*db, as_bytes("alice"));
  REQUIRE(value);
  REQUIRE(value->has_value());
  CHECK(as_chars(**value) == "row");
}

TEST_CASE("an aborted write leaves nothing behind") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  {
    auto txn = (*env)->begin_write();
    REQUIRE(txn->put(*db, as_bytes("k"), as_bytes("v")));
    // destroyed without commit
  }
  auto txn = (*env)->begin_read();
  auto value = txn->get(*db, as_bytes("k"));
  REQUIRE(value);
  CHECK_FALSE(value->has_value());
}

TEST_CASE("insert refuses an existing key and erase reports absence") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  auto txn = (*env)->begin_write();
  CHECK(*txn->insert(*db, as_bytes("k"), as_bytes("1")));
  CHECK_FALSE(*txn->insert(*db, as_bytes("k"), as_bytes("2")));
  CHECK(as_chars(**txn->get(*db, as_bytes("k"))) == "1");
  CHECK(*txn->erase(*db, as_bytes("k")));
  CHECK_FALSE(*txn->erase(*db, as_bytes("k")));
}

TEST_CASE("scan visits keys in order from the start key") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  auto txn = (*env)->begin_write();
  for (auto k : {"b", "a", "d", "c"}) REQUIRE(txn->put(*db, as_bytes(k), as_bytes(k)));
  std::string seen;
  REQUIRE(txn->scan(*db, as_bytes("b"), [&](ByteView key, ByteView) {
    seen += as_chars(key);
    return true;
  }));
  CHECK(seen == "bcd");
  CHECK(*txn->count(*db) == 4);
}

TEST_CASE("a full map is reported as map_full and poisons the transaction") {
  TempDir dir;
  Environment::Options options;
  options.map_size = 64 * 1024;
  auto env = Environment::open(dir.path, options);
  REQUIRE(env);
  auto db = (*env)->open_database("d");
  auto txn = (*env)->begin_write();
  std::string big(2000, 'x');
  Expected<void, StoreError> result;
  for (int i = 0; i < 1000 && result; ++i) result = txn->put(*db, as_bytes(std::to_string(i)), as_bytes(big));
  REQUIRE_FALSE(result);
  CHECK(result.error().code == StoreErrc::map_full);
  CHECK(txn->poisoned());
  auto again = txn->put(*db, as_bytes("x"), as_bytes("y"));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == StoreErrc::poisoned);
  CHECK_FALSE(txn->commit());
}

TEST_CASE("opening a missing directory is a clear not_found error") {
  auto env = Environment::open("/nonexistent/tsunagu-test-dir");
  REQUIRE_FALSE(env);
  CHECK(env.error().code == StoreErrc::not_found);
  CHECK(env.error().detail.find("/nonexistent/tsunagu-test-dir") != std::string::npos);
}

// --- the fault seam (FaultPlan): faults a real disk cannot give on cue -------

namespace {
std::optional<std::string> read_key(Environment& env, DatabaseHandle db, const char* key) {
  auto txn = env.begin_read();
  REQUIRE(txn);
  auto value = txn->get(db, as_bytes(key));
  REQUIRE(value);
  if (!value->has_value()) return std::nullopt;
  return std::string(as_chars(**value));
}
}  // namespace

TEST_CASE("the third commit fails when told to, writes nothing, and the next transaction works") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  REQUIRE(env);
  auto db = (*env)->open_database("d");
  REQUIRE(db);
  (*env)->faults().fail_commit(3, EIO);
  for (const char* key : {"one", "two"}) {
    auto txn = (*env)->begin_write();
    REQUIRE(txn->put(*db, as_bytes(key), as_bytes(key)));
    REQUIRE(txn->commit());
  }
  auto third = (*env)->begin_write();
  REQUIRE(third->put(*db, as_bytes("three"), as_bytes("3")));
  REQUIRE(third->put(*db, as_bytes("one"), as_bytes("overwritten")));
  auto failed = third->commit();
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == StoreErrc::io_error);
  CHECK(failed.error().system_code == EIO);
  CHECK(failed.error().detail.find("mdb_txn_commit") != std::string::npos);
  CHECK_FALSE(third->active());
  CHECK((*env)->faults().injected() == 1);

  // What was committed before is intact; nothing of the failed one shows.
  CHECK(read_key(**env, *db, "one") == "one");
  CHECK(read_key(**env, *db, "two") == "two");
  CHECK(read_key(**env, *db, "three") == std::nullopt);

  auto fourth = (*env)->begin_write();
  REQUIRE(fourth->put(*db, as_bytes("three"), as_bytes("3")));
  REQUIRE(fourth->commit());
  CHECK(read_key(**env, *db, "three") == "3");
  CHECK_FALSE((*env)->faults().armed());
}

TEST_CASE("a write failed with ENOSPC poisons the transaction: later calls and the commit fail, nothing is written") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  REQUIRE(db);
  auto txn = (*env)->begin_write();
  REQUIRE(txn->put(*db, as_bytes("before"), as_bytes("b")));
  (*env)->faults().fail_writes(ENOSPC);
  auto put = txn->put(*db, as_bytes("k"), as_bytes("v"));
  REQUIRE_FALSE(put);
  CHECK(put.error().code == StoreErrc::disk_full);
  CHECK(txn->poisoned());
  auto read = txn->get(*db, as_bytes("before"));
  REQUIRE_FALSE(read);
  CHECK(read.error().code == StoreErrc::poisoned);
  auto commit = txn->commit();
  REQUIRE_FALSE(commit);
  CHECK(commit.error().code == StoreErrc::poisoned);
  (*env)->faults().clear();
  CHECK(read_key(**env, *db, "before") == std::nullopt);
}

TEST_CASE("map full on every write and commit lasts until cleared, then writing works again") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  REQUIRE(db);
  (*env)->faults().fail_writes(MDB_MAP_FULL);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto txn = (*env)->begin_write();
    auto inserted = txn->insert(*db, as_bytes("k"), as_bytes("v"));
    REQUIRE_FALSE(inserted);
    CHECK(inserted.error().code == StoreErrc::map_full);
  }
  {  // a transaction that writes nothing still cannot commit while the map is full
    auto txn = (*env)->begin_write();
    auto commit = txn->commit();
    REQUIRE_FALSE(commit);
    CHECK(commit.error().code == StoreErrc::map_full);
  }
  // Reads are not writes: they go on.
  CHECK(read_key(**env, *db, "k") == std::nullopt);
  (*env)->faults().clear();
  auto txn = (*env)->begin_write();
  REQUIRE(txn->insert(*db, as_bytes("k"), as_bytes("v")));
  REQUIRE(txn->commit());
  CHECK(read_key(**env, *db, "k") == "v");
}

TEST_CASE("an unarmed fault plan changes nothing") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  auto db = (*env)->open_database("d");
  for (int i = 0; i < 50; ++i) {
    auto txn = (*env)->begin_write();
    REQUIRE(txn->put(*db, as_bytes("k"), as_bytes("v")));
    REQUIRE(txn->erase(*db, as_bytes("k")));
    REQUIRE(txn->commit());
  }
  CHECK((*env)->faults().injected() == 0);
}

TEST_CASE("scan_prefix: visits only the keys under the prefix, from the given key, and stops at the first beyond") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  REQUIRE(env);
  auto db = (*env)->open_database("rows");
  REQUIRE(db);
  auto txn = (*env)->begin_write();
  REQUIRE(txn);
  for (const char* key : {"a/1", "b/1", "b/2", "b/3", "c/1"}) REQUIRE(txn->put(*db, as_bytes(key), as_bytes("v")));
  std::string seen;
  REQUIRE(txn->scan_prefix(*db, as_bytes("b/"), {}, [&](ByteView key, ByteView) {
    seen += std::string(as_chars(key)) + " ";
    return true;
  }));
  CHECK(seen == "b/1 b/2 b/3 ");
  seen.clear();
  REQUIRE(txn->scan_prefix(*db, as_bytes("b/"), as_bytes("b/2"), [&](ByteView key, ByteView) {
    seen += std::string(as_chars(key)) + " ";
    return true;
  }));
  CHECK(seen == "b/2 b/3 ");
  seen.clear();
  REQUIRE(txn->scan_prefix(*db, as_bytes("d/"), {}, [&](ByteView key, ByteView) {
    seen += std::string(as_chars(key));
    return true;
  }));
  CHECK(seen.empty());
}
