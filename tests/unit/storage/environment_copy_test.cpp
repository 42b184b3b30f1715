// storage/environment_copy (`tsunagu-rendezvous backup`) and
// Environment::usage (`doctor`'s map check), on real LMDB files.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "storage/environment_copy.hpp"
#include "storage/lmdb_store.hpp"
#include "temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::storage;

using test::TempDir;

TEST_CASE("usage: the used bytes grow with the data and the map size is the one asked for") {
  TempDir dir;
  auto env = Environment::open(dir.path, Environment::Options{uint64_t{8} << 20, 16, 126});
  REQUIRE(env);
  auto before = (*env)->usage();
  REQUIRE(before);
  CHECK(before->map_bytes == uint64_t{8} << 20);
  auto db = (*env)->open_database("d");
  REQUIRE(db);
  auto txn = (*env)->begin_write();
  std::string value(1000, 'x');
  for (int i = 0; i < 1000; ++i) REQUIRE(txn->put(*db, as_bytes("key" + std::to_string(i)), as_bytes(value)));
  REQUIRE(txn->commit());
  auto after = (*env)->usage();
  REQUIRE(after);
  CHECK(after->used_bytes > before->used_bytes + 1'000'000);
  CHECK(after->used_bytes < after->map_bytes);
}

TEST_CASE("copy_environment: a copy taken while the source is open holds its committed data, compacted") {
  TempDir source, target;
  auto env = Environment::open(source.path);
  REQUIRE(env);
  auto db = (*env)->open_database("accounts");
  {
    auto txn = (*env)->begin_write();
    std::string value(4000, 'y');
    for (int i = 0; i < 500; ++i) REQUIRE(txn->put(*db, as_bytes("k" + std::to_string(i)), as_bytes(value)));
    REQUIRE(txn->commit());
  }
  {
    auto txn = (*env)->begin_write();
    for (int i = 1; i < 500; ++i) REQUIRE(txn->erase(*db, as_bytes("k" + std::to_string(i))));
    REQUIRE(txn->commit());
  }
  REQUIRE(copy_environment(source.path, target.path, uint64_t{1} << 30));
  CHECK(std::filesystem::file_size(target.path + "/data.mdb") < std::filesystem::file_size(source.path + "/data.mdb"));
  auto copy = Environment::open(target.path);
  REQUIRE(copy);
  auto copied_db = (*copy)->open_database("accounts");
  REQUIRE(copied_db);
  auto txn = (*copy)->begin_read();
  auto kept = txn->get(*copied_db, as_bytes("k0"));
  REQUIRE(kept);
  CHECK(kept->has_value());
  auto gone = txn->get(*copied_db, as_bytes("k1"));
  REQUIRE(gone);
  CHECK_FALSE(gone->has_value());
  // A second copy into the same place is refused rather than overwriting.
  auto again = copy_environment(source.path, target.path, uint64_t{1} << 30);
  REQUIRE_FALSE(again);
  CHECK(again.error().detail.find("exists") != std::string::npos);
}
