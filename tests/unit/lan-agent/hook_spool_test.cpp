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
  REQUIRE(prepare_spool_directory(spool).has_value());
  struct stat st {};
  REQUIRE(::stat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01733);
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
