// StorageErrorLog with real failures (the fault seam makes LMDB's writes fail
// with ENOSPC and MDB_MAP_FULL) and its lines read back from stderr.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "storage/storage_error_log.hpp"
#include "temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::storage;

using test::TempDir;

namespace {
// What the code under test writes to stderr while this lives.
class CapturedStderr {
 public:
  explicit CapturedStderr(const std::string& file) : file_(file) {
    fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    FILE* out = fopen(file.c_str(), "w");
    REQUIRE(out != nullptr);
    dup2(fileno(out), STDERR_FILENO);
    fclose(out);
  }
  ~CapturedStderr() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(file_);
    std::stringstream all;
    all << in.rdbuf();
    return all.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }
  std::string file_;
  int saved_ = -1;
};

// The error a write gets while the fault seam fails every write with `code`.
StoreError failed_write(Environment& env, int code) {
  auto db = env.open_database("t");
  REQUIRE(db);
  env.faults().fail_writes(code);
  auto txn = env.begin_write();
  REQUIRE(txn);
  auto put = txn->put(*db, as_bytes("k"), as_bytes("v"));
  env.faults().clear();
  REQUIRE_FALSE(put.has_value());
  return put.error();
}
}  // namespace

TEST_CASE("storage error log: counts by kind, writes a burst, then counts what it did not write") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  REQUIRE(env);
  StoreError disk = failed_write(**env, ENOSPC);
  StoreError map = failed_write(**env, MDB_MAP_FULL);
  CHECK(disk.code == StoreErrc::disk_full);
  CHECK(map.code == StoreErrc::map_full);

  StorageErrorLog errors(2, std::chrono::seconds(3600));
  std::string lines;
  {
    CapturedStderr captured(dir.path + "/stderr");
    CHECK(errors.note(log::Level::error, "table commit: ", disk));
    CHECK(errors.note(log::Level::warn, "sync: ", map));
    CHECK_FALSE(errors.note(log::Level::error, "table commit: ", disk));
    CHECK_FALSE(errors.note(log::Level::error, "table commit: ", disk));
    lines = captured.text();
  }
  CHECK(errors.count(StoreErrc::disk_full) == 3);
  CHECK(errors.count(StoreErrc::map_full) == 1);
  CHECK(errors.count(StoreErrc::io_error) == 0);
  CHECK(errors.total() == 4);
  CHECK(errors.suppressed() == 2);
  CHECK(lines.find("table commit: " + std::string(to_string(StoreErrc::disk_full)) + " (" + disk.detail + ")") !=
        std::string::npos);
  CHECK(lines.find("sync: " + std::string(to_string(StoreErrc::map_full))) != std::string::npos);
  CHECK(lines.find("not logged so far") == std::string::npos);  // nothing was held back before these two
  size_t line_count = 0;
  for (char c : lines) line_count += c == '\n';
  CHECK(line_count == 2);
}

TEST_CASE("storage error log: after a held-back stretch the next line says how many were not written; log() does not count") {
  TempDir dir;
  auto env = Environment::open(dir.path);
  REQUIRE(env);
  StoreError disk = failed_write(**env, ENOSPC);
  StorageErrorLog errors(1, std::chrono::seconds(1));
  std::string lines;
  {
    CapturedStderr captured(dir.path + "/stderr");
    CHECK(errors.log(log::Level::error, "a: ", disk));
    CHECK_FALSE(errors.log(log::Level::error, "b: ", disk));
    CHECK_FALSE(errors.log(log::Level::error, "c: ", disk));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the next window
    CHECK(errors.log(log::Level::error, "d: ", disk));
    lines = captured.text();
  }
  CHECK(errors.total() == 0);
  CHECK(lines.find("a: ") != std::string::npos);
  CHECK(lines.find("b: ") == std::string::npos);
  CHECK(lines.find("d: " + std::string(to_string(StoreErrc::disk_full)) + " (" + disk.detail +
                   "); 2 storage errors not logged so far") != std::string::npos);
}
