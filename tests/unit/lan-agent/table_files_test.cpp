// The table's layout and durability (lan-agent/table_files.hpp) on real LMDB
// files: the admin bindings journal, the marker, keeping or rebuilding a table
// found without it, and the move from the old one-environment layout.
#include "lan-agent/table_files.hpp"

#include <doctest/doctest.h>

#include <ctime>
#include <filesystem>
#include <fstream>

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
    // A command's table is flushed on every commit and made here: it carries the marker.
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

}  // namespace
}  // namespace tsunagu::lanagent
