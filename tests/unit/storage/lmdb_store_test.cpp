#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "storage/lmdb_store.hpp"

using namespace tsunagu;
using namespace tsunagu::storage;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tsunagu-storage-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

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
