#include "lan-agent/hook_spool.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "allocation/lease_event_codec.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempDir;

namespace {

Bytes encode(const std::vector<alloc::LeaseEvent>& events) {
  Bytes out;
  for (const auto& e : events) REQUIRE(alloc::encode_lease_event(e, out).has_value());
  return out;
}

auto allow_all = [](uid_t, gid_t) { return true; };

}  // namespace

TEST_CASE("spool: appended events replay in order, then the file is truncated") {
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  REQUIRE(prepare_spool_directory(spool, ::getegid()).has_value());
  struct stat st {};
  REQUIRE(::stat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01770);
  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  auto b = grant("02:0a:0b:0c:0d:0f", "10.99.0.69", 2100, 1001);
  auto c = a;
  c.action = alloc::LeaseAction::remove;
  auto written = append_to_spool(spool, encode({a, b}));
  REQUIRE(written.has_value());
  CHECK(*written == spool_file_for(spool, ::geteuid()));
  REQUIRE(append_to_spool(spool, encode({c})).has_value());

  std::vector<alloc::LeaseEvent> seen;
  auto reports = replay_spool_directory(spool, allow_all, [&](std::vector<alloc::LeaseEvent>& events) {
    seen = events;
    return true;
  });
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].error.empty());
  CHECK(reports[0].truncated);
  CHECK(reports[0].replay.records == 3);
  CHECK(seen == std::vector<alloc::LeaseEvent>{a, b, c});
  CHECK(std::filesystem::file_size(*written) == 0);
  // Nothing left: a second replay sees nothing.
  seen.clear();
  CHECK(replay_spool_directory(spool, allow_all, [&](std::vector<alloc::LeaseEvent>& e) {
          seen = e;
          return true;
        }).empty());
  CHECK(seen.empty());
}

TEST_CASE("spool: a failed commit keeps the spool for the next try") {
  TempDir dir;
  REQUIRE(append_to_spool(dir.path(), encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)})).has_value());
  auto reports = replay_spool_directory(dir.path(), allow_all, [](std::vector<alloc::LeaseEvent>&) { return false; });
  REQUIRE(reports.size() == 1);
  CHECK_FALSE(reports[0].error.empty());
  CHECK(std::filesystem::file_size(spool_file_for(dir.path(), ::geteuid())) > 0);
}

TEST_CASE("spool: a torn last record is dropped, the records before it replayed") {
  TempDir dir;
  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  Bytes bytes = encode({a, a});
  bytes.resize(bytes.size() - 5);  // the hook died in the middle of the second append
  REQUIRE(append_to_spool(dir.path(), bytes).has_value());
  size_t count = 0;
  auto reports = replay_spool_directory(dir.path(), allow_all, [&](std::vector<alloc::LeaseEvent>& e) {
    count = e.size();
    return true;
  });
  REQUIRE(reports.size() == 1);
  CHECK(count == 1);
  CHECK(reports[0].replay.torn_tail_bytes > 0);
  CHECK(reports[0].truncated);
}

TEST_CASE("spool: files of owners that may not hand events are left alone") {
  TempDir dir;
  REQUIRE(append_to_spool(dir.path(), encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)})).has_value());
  bool called = false;
  auto reports = replay_spool_directory(dir.path(), [](uid_t, gid_t) { return false; },
                                        [&](std::vector<alloc::LeaseEvent>&) { return called = true; });
  REQUIRE(reports.size() == 1);
  CHECK_FALSE(called);
  CHECK_FALSE(reports[0].error.empty());
}

TEST_CASE("spool: the hook refuses to append through a symlink") {
  TempDir dir;
  std::string target = dir.write("elsewhere", "");
  std::filesystem::create_symlink(target, spool_file_for(dir.path(), ::geteuid()));
  CHECK_FALSE(append_to_spool(dir.path(), encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)})).has_value());
  CHECK(std::filesystem::file_size(target) == 0);
}

// Issue 11 §3: the spool directory is not world-writable, and what a local user
// plants in it is never replayed (nor truncated).
TEST_CASE("spool directory: created 1770, owned by us and the spool group; an old 1733 one is tightened") {
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  gid_t group = ::geteuid() == 0 ? 65534 : ::getegid();
  REQUIRE(prepare_spool_directory(spool, group).has_value());
  struct stat st {};
  REQUIRE(::lstat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01770);
  CHECK((st.st_mode & S_IWOTH) == 0);
  CHECK(st.st_uid == ::geteuid());
  CHECK(st.st_gid == group);
  REQUIRE(::chmod(spool.c_str(), 01733) == 0);  // what earlier versions made
  REQUIRE(prepare_spool_directory(spool, group).has_value());
  REQUIRE(::lstat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01770);
}

TEST_CASE("spool directory: a symlink or a directory of another user is refused") {
  TempDir dir;
  std::string real = dir.path() + "/real";
  REQUIRE(::mkdir(real.c_str(), 0700) == 0);
  std::string link = dir.path() + "/spool-link";
  std::filesystem::create_directory_symlink(real, link);
  auto made = prepare_spool_directory(link, ::getegid());
  REQUIRE_FALSE(made.has_value());
  CHECK(made.error().find("not a directory") != std::string::npos);
  if (::geteuid() == 0) {
    REQUIRE(::chown(real.c_str(), 65534, 65534) == 0);
    made = prepare_spool_directory(real, ::getegid());
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error().find("owned by uid 65534") != std::string::npos);
  }
}

namespace {

// Replays `directory` once; the reports, and whether anything was committed.
std::vector<SpoolFileReport> replay_once(const std::string& directory, bool& committed) {
  committed = false;
  return replay_spool_directory(directory, allow_all, [&](std::vector<alloc::LeaseEvent>&) { return committed = true; });
}

}  // namespace

TEST_CASE("spool: a symlink named like a spool file is neither replayed nor truncated through") {
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  REQUIRE(::mkdir(spool.c_str(), 0700) == 0);
  std::string elsewhere = dir.path() + "/elsewhere";
  {
    std::ofstream out(elsewhere, std::ios::binary);
    Bytes records = encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)});
    out.write(reinterpret_cast<const char*>(records.data()), static_cast<std::streamsize>(records.size()));
  }
  auto size = std::filesystem::file_size(elsewhere);
  std::filesystem::create_symlink(elsewhere, spool_file_for(spool, ::geteuid()));
  bool committed = false;
  auto reports = replay_once(spool, committed);
  REQUIRE(reports.size() == 1);
  CHECK_FALSE(committed);
  CHECK(reports[0].error.find("symbolic link") != std::string::npos);
  CHECK(std::filesystem::file_size(elsewhere) == size);
}

TEST_CASE("spool: a hard link to another file is neither replayed nor truncated") {
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  REQUIRE(::mkdir(spool.c_str(), 0700) == 0);
  REQUIRE(append_to_spool(spool, encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)})).has_value());
  std::string file = spool_file_for(spool, ::geteuid());
  std::string other = dir.path() + "/precious";
  REQUIRE(::link(file.c_str(), other.c_str()) == 0);
  auto size = std::filesystem::file_size(other);
  bool committed = false;
  auto reports = replay_once(spool, committed);
  REQUIRE(reports.size() == 1);
  CHECK_FALSE(committed);
  CHECK(reports[0].error.find("hard links") != std::string::npos);
  CHECK_FALSE(reports[0].truncated);
  CHECK(std::filesystem::file_size(other) == size);
  // The hook will not append to it either.
  CHECK_FALSE(append_to_spool(spool, encode({grant("02:0a:0b:0c:0d:0f", "10.99.0.69", 2000, 1000)})).has_value());
  CHECK(std::filesystem::file_size(other) == size);
}

TEST_CASE("spool: a file owned by another user than its name says is refused") {
  if (::geteuid() != 0) return;  // needs chown
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  REQUIRE(::mkdir(spool.c_str(), 0700) == 0);
  REQUIRE(append_to_spool(spool, encode({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)})).has_value());
  // hook-0.spool (root's name), but owned by nobody: a group member's plant.
  REQUIRE(::chown(spool_file_for(spool, 0).c_str(), 65534, 65534) == 0);
  bool committed = false;
  auto reports = replay_once(spool, committed);
  REQUIRE(reports.size() == 1);
  CHECK_FALSE(committed);
  CHECK(reports[0].error.find("not the uid its name claims") != std::string::npos);
}
