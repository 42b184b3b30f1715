// storage/environment_copy (`tsunagu-rendezvous backup` and `restore`) and
// Environment::usage (`doctor`'s map check), on real LMDB files.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

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

namespace {

void fill(const std::string& directory, const char* table, int count) {
  auto env = Environment::open(directory);
  REQUIRE(env);
  auto db = (*env)->open_database(table);
  REQUIRE(db);
  auto txn = (*env)->begin_write();
  std::string value(2000, 'z');
  for (int i = 0; i < count; ++i) REQUIRE(txn->put(*db, as_bytes("k" + std::to_string(i)), as_bytes(value)));
  REQUIRE(txn->commit());
}

bool holds_key(const std::string& directory, const char* table, const std::string& key) {
  auto env = Environment::open(directory);
  REQUIRE(env);
  auto db = (*env)->open_database(table);
  REQUIRE(db);
  auto txn = (*env)->begin_read();
  auto got = txn->get(*db, as_bytes(key));
  REQUIRE(got);
  return got->has_value();
}

}  // namespace

TEST_CASE("copy_environment: progress ends at the copy's size") {
  TempDir source, target;
  fill(source.path, "accounts", 300);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  REQUIRE(copy_environment(source.path, target.path, uint64_t{1} << 30,
                           [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); }));
  REQUIRE_FALSE(calls.empty());
  auto size = std::filesystem::file_size(target.path + "/data.mdb");
  CHECK(calls.back().first == size);
  CHECK(calls.back().second == size);
}

TEST_CASE("restore_environment: refused while another process has the environment open, then put in place") {
  TempDir live, backup;
  fill(live.path, "accounts", 10);
  REQUIRE(copy_environment(live.path, backup.path, uint64_t{1} << 30));
  fill(live.path, "later", 1);  // written after the backup: gone once it is restored

  // A child process holds the live environment open, as a running daemon does.
  int ready[2], release[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(release) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(release[1]);  // else the read below never sees the parent's close
    auto env = Environment::open(live.path);
    char byte = env ? 'y' : 'n';
    ssize_t ignored = ::write(ready[1], &byte, 1);
    (void)ignored;
    ignored = ::read(release[0], &byte, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(release[0]);
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  CHECK(byte == 'y');
  auto holder = environment_holder(live.path);
  REQUIRE(holder);
  CHECK(*holder == child);
  auto busy = restore_environment(backup.path + "/data.mdb", live.path, "accounts");
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == StoreErrc::busy);
  CHECK(busy.error().detail.find(std::to_string(child)) != std::string::npos);
  ::close(release[1]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  ::close(ready[0]);

  auto free_now = environment_holder(live.path);
  REQUIRE(free_now);
  CHECK(*free_now == 0);
  REQUIRE(restore_environment(backup.path + "/data.mdb", live.path, "accounts"));
  CHECK(std::filesystem::exists(live.path + "/data.mdb.before-restore"));
  CHECK_FALSE(std::filesystem::exists(live.path + "/data.mdb.restoring"));
  CHECK(holds_key(live.path, "accounts", "k9"));
  CHECK_FALSE(holds_key(live.path, "later", "k0"));
}

TEST_CASE("restore_environment: a file that is not a backup of the right database is refused, nothing replaced") {
  TempDir live, other, scratch;
  fill(live.path, "accounts", 3);
  fill(other.path, "leases", 3);  // an LMDB file of another program's tables
  REQUIRE(copy_environment(other.path, scratch.path, uint64_t{1} << 30));
  auto wrong_tables = restore_environment(scratch.path + "/data.mdb", live.path, "accounts");
  REQUIRE_FALSE(wrong_tables);
  CHECK(wrong_tables.error().code == StoreErrc::corrupted);
  CHECK(wrong_tables.error().detail.find("without the table 'accounts'") != std::string::npos);
  std::string text_file = scratch.file("notes.txt");
  {
    std::FILE* f = std::fopen(text_file.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("not a database\n", f);
    std::fclose(f);
  }
  auto not_lmdb = restore_environment(text_file, live.path, "accounts");
  REQUIRE_FALSE(not_lmdb);
  CHECK(not_lmdb.error().code == StoreErrc::corrupted);
  CHECK_FALSE(std::filesystem::exists(live.path + "/data.mdb.before-restore"));
  CHECK(holds_key(live.path, "accounts", "k2"));
}
