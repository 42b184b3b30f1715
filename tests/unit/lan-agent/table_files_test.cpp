// The table's layout and durability (lan-agent/table_files.hpp) on real LMDB
// files: the admin bindings journal, the marker, keeping or rebuilding a table
// found without it, and the move from the old one-environment layout.
#include "lan-agent/table_files.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "lan-agent/agent_config.hpp"
#include "test_support.hpp"

namespace tsunagu::lanagent {
namespace {

using testing::grant;
using testing::TempDir;

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

AgentConfig config_in(const TempDir& dir) {
  return parse_agent_config("[agent]\ndata_directory = \"" + dir.path() + "/data\"\n", dir.path() + "/agent.toml");
}

alloc::ClientRef mac(const std::string& text) { return *alloc::ClientRef::parse(text); }

// What a machine that lost power leaves: no marker, the boot ID of another boot.
void fake_reboot(const TablePaths& paths) {
  std::filesystem::remove(paths.clean_marker);
  std::ofstream(paths.boot_id_file) << "00000000-0000-0000-0000-000000000000\n";
}

TEST_CASE("a table without the marker is kept in the same boot and rebuilt after another; the marker says a clean stop") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  TablePaths paths = table_paths(config.data_directory);
  {
    auto open = open_table(config, true, TableUser::agent);
    REQUIRE(open.has_value());
    CHECK_FALSE(open->rebuilt);
    REQUIRE(open->table->apply(grant("02:00:00:00:00:01", "10.0.0.1", now() + 600, now()), now()).has_value());
    CHECK_FALSE(std::filesystem::exists(paths.clean_marker));
  }  // dropped without an orderly stop: the agent died, the machine did not
  {
    auto open = open_table(config, true, TableUser::agent);
    REQUIRE(open.has_value());
    CHECK_FALSE(open->rebuilt);
    CHECK(open->table->list(now())->size() == 1);
    REQUIRE(mark_table_clean(*open).has_value());
    CHECK(std::filesystem::exists(paths.clean_marker));
  }
  {
    auto open = open_table(config, true, TableUser::agent);
    REQUIRE(open.has_value());
    CHECK_FALSE(open->rebuilt);
    CHECK_FALSE(std::filesystem::exists(paths.clean_marker));  // removed while the agent runs
    CHECK(open->table->list(now())->size() == 1);
  }
  fake_reboot(paths);
  auto open = open_table(config, true, TableUser::agent);
  REQUIRE(open.has_value());
  CHECK(open->rebuilt);
  CHECK(open->table->list(now())->empty());  // the caller syncs the lease files next
}

TEST_CASE("admin bindings survive a rebuild; a client bound anew leaves its old extension; unbind forgets it") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  TablePaths paths = table_paths(config.data_directory);
  {
    auto open = open_table(config, true, TableUser::command);
    REQUIRE(open.has_value());
    for (const auto& [extension, client] : {std::pair{"4106", "02:00:00:00:41:06"}, {"4107", "02:00:00:00:41:07"},
                                            {"4108", "02:00:00:00:41:06"}}) {
      REQUIRE(open->table->bind(extension, mac(client), now()).has_value());
      auto ref = mac(client);
      REQUIRE(record_admin_binding(*open, extension, &ref).has_value());
    }
    REQUIRE(open->table->unbind("4107", now()).has_value());
    REQUIRE(record_admin_binding(*open, "4107", nullptr).has_value());
    // A command's new table is written out at its end, and only then carries the marker.
    CHECK_FALSE(std::filesystem::exists(paths.clean_marker));
    REQUIRE(finish_command_table(*open).has_value());
    CHECK(std::filesystem::exists(paths.clean_marker));
  }
  fake_reboot(paths);
  auto open = open_table(config, true, TableUser::agent);
  REQUIRE(open.has_value());
  CHECK(open->rebuilt);
  auto bindings = open->table->bindings();
  REQUIRE(bindings.has_value());
  REQUIRE(bindings->size() == 1);
  CHECK((*bindings)[0].extension == "4108");
  CHECK((*bindings)[0].client == mac("02:00:00:00:41:06"));
  CHECK((*bindings)[0].origin == alloc::BindingOrigin::admin);
}

TEST_CASE("a data directory of the old layout: its admin bindings are kept, its leases come back from the lease files") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  std::filesystem::create_directories(config.data_directory);
  {
    auto env = storage::Environment::open(config.data_directory);
    REQUIRE(env.has_value());
    auto old_table = alloc::AllocationTable::open(**env, alloc::TableOptions{});
    REQUIRE(old_table.has_value());
    REQUIRE(old_table->bind("4106", mac("02:00:00:00:41:06"), now()).has_value());
    REQUIRE(old_table->apply(grant("02:00:00:00:00:01", "10.0.0.1", now() + 600, now()), now()).has_value());
  }
  {
    auto open = open_table(config, true, TableUser::agent);
    REQUIRE(open.has_value());
    auto binding = open->table->binding("4106");
    REQUIRE(binding.has_value());
    REQUIRE(binding->has_value());
    CHECK((*binding)->client == mac("02:00:00:00:41:06"));
    CHECK(open->table->list(now())->empty());
  }
  // And in the journal, not only in the new table: a rebuild keeps it.
  fake_reboot(table_paths(config.data_directory));
  auto open = open_table(config, true, TableUser::agent);
  REQUIRE(open.has_value());
  CHECK(open->rebuilt);
  auto binding = open->table->binding("4106");
  REQUIRE(binding.has_value());
  CHECK(binding->has_value());
}

// Whether another open file description holds the table directory's lock:
// flock(2) on a descriptor of our own, released at once when we got it.
bool table_directory_locked(const TablePaths& paths) {
  int fd = ::open(paths.table_directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return locked;
}

// Whether /proc/locks shows a process waiting for a FLOCK on `directory`
// (a waiter's line starts "N: -> FLOCK", and names the inode as MAJ:MIN:INODE).
bool someone_waits_for_lock_on(const std::string& directory) {
  struct stat st {};
  REQUIRE(::stat(directory.c_str(), &st) == 0);
  std::ifstream locks("/proc/locks");
  std::string line;
  std::string inode = ":" + std::to_string(st.st_ino) + " ";
  while (std::getline(locks, line))
    if (line.find("-> FLOCK") != std::string::npos && line.find(inode) != std::string::npos) return true;
  return false;
}

TEST_CASE("a table a command creates is written out once, at the command's end: no marker and locked until then") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  TablePaths paths = table_paths(config.data_directory);
  {
    auto open = open_table(config, true, TableUser::command);
    REQUIRE(open.has_value());
    CHECK(open->flush_pending);
    REQUIRE(open->table->apply(grant("02:00:00:00:00:01", "10.0.0.1", now() + 600, now()), now()).has_value());
    CHECK_FALSE(std::filesystem::exists(paths.clean_marker));
    CHECK(table_directory_locked(paths));
    // No admin binding recorded: the durable store is not made (nor flushed).
    CHECK_FALSE(std::filesystem::exists(paths.durable_directory + "/data.mdb"));
    REQUIRE(finish_command_table(*open).has_value());
    CHECK_FALSE(open->flush_pending);
    CHECK(std::filesystem::exists(paths.clean_marker));
  }
  CHECK_FALSE(table_directory_locked(paths));
  {
    // A command on a table that exists commits durably, as before, and leaves the marker alone.
    auto open = open_table(config, true, TableUser::command);
    REQUIRE(open.has_value());
    CHECK_FALSE(open->flush_pending);
    CHECK_FALSE(table_directory_locked(paths));
  }
  auto open = open_table(config, true, TableUser::agent);
  REQUIRE(open.has_value());
  CHECK_FALSE(open->rebuilt);  // the marker vouches for it
  CHECK(open->table->list(now())->size() == 1);
  CHECK(std::filesystem::exists(paths.durable_directory + "/data.mdb"));  // the agent makes it
}

TEST_CASE("a command that stops before writing out the table it created leaves no marker: the agent rebuilds it") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  {
    auto open = open_table(config, true, TableUser::command);
    REQUIRE(open.has_value());
    REQUIRE(open->table->apply(grant("02:00:00:00:00:01", "10.0.0.1", now() + 600, now()), now()).has_value());
  }  // no finish_command_table: it never reported the sync done
  CHECK_FALSE(std::filesystem::exists(table_paths(config.data_directory).clean_marker));
  auto open = open_table(config, true, TableUser::agent);
  REQUIRE(open.has_value());
  CHECK(open->rebuilt);  // its pages may not be on the disk: not trusted
  CHECK(open->table->list(now())->empty());
}

TEST_CASE("the agent opening a table a command is still creating waits for the command to write it out") {
  TempDir dir;
  AgentConfig config = config_in(dir);
  TablePaths paths = table_paths(config.data_directory);
  std::optional<OpenTable> command;
  {
    auto opened = open_table(config, true, TableUser::command);
    REQUIRE(opened.has_value());
    command.emplace(std::move(*opened));
  }
  REQUIRE(command->table->apply(grant("02:00:00:00:00:01", "10.0.0.1", now() + 600, now()), now()).has_value());
  Expected<OpenTable, std::string> agent = Unexpected(std::string("not opened"));
  std::thread starting([&] { agent = open_table(config, true, TableUser::agent); });
  // Bounded: until /proc/locks shows the agent's open waiting on the directory (at most 10 s).
  bool waiting = false;
  for (int i = 0; i < 10000 && !waiting; ++i) {
    waiting = someone_waits_for_lock_on(paths.table_directory);
    if (!waiting) ::usleep(1000);
  }
  CHECK(waiting);
  REQUIRE(finish_command_table(*command).has_value());
  command.reset();  // the lock goes with it, after its environments close
  starting.join();
  REQUIRE(agent.has_value());
  // Had it not waited, it would have found neither a marker nor a boot ID and discarded the table.
  CHECK_FALSE(agent->rebuilt);
  CHECK(agent->table->list(now())->size() == 1);
}

}  // namespace
}  // namespace tsunagu::lanagent
