// Where the agent keeps its allocation table, and how durable each part is
// (docs/security.md, "The allocation table is derived state"):
//
//   DATA/data.mdb          flushed on every commit: the admin bindings
//                          (`tsunagu-lan-agent bind`), the one part of the
//                          table no lease file can give back.
//   DATA/table/data.mdb    the allocation table, committed to the page cache
//                          only while the agent runs (flushed every
//                          table.flush_interval_ms and at an orderly stop): a
//                          crash of the agent loses nothing, a crash of the
//                          machine may leave it inconsistent.
//   DATA/table/clean-shutdown   written after the final flush of an orderly
//                          stop, removed when the agent opens the table.
//   DATA/table/boot-id     the kernel's boot ID when the agent opened it.
//
// The agent starting without the marker keeps the table if the machine has not
// rebooted since (the kernel still holds every committed page) and otherwise
// discards it and rebuilds it from the lease files, the spool, the admin
// bindings and table.pins.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "allocation/allocation_table.hpp"
#include "base/expected.hpp"
#include "lan-agent/agent_config.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::lanagent {

// The agent daemon flushes on its own schedule; commands (bind, sync, list)
// commit durably and never touch the marker.
enum class TableUser { agent, command };

struct TablePaths {
  std::string durable_directory;  // DATA
  std::string table_directory;    // DATA/table
  std::string clean_marker;       // DATA/table/clean-shutdown
  std::string boot_id_file;       // DATA/table/boot-id
};
TablePaths table_paths(const std::string& data_directory);

struct OpenTable {
  std::unique_ptr<storage::Environment> durable_env;
  std::unique_ptr<storage::Environment> env;  // the table's
  std::optional<alloc::AllocationTable> table;
  storage::DatabaseHandle admin_bindings = 0;
  TablePaths paths;
  // The agent found no marker after a reboot (or no boot ID): the table was
  // discarded, the admin bindings written back; the caller syncs the lease files.
  bool rebuilt = false;
};

// Opens (creating when `create`) the table in config.data_directory.
Expected<OpenTable, std::string> open_table(const AgentConfig& config, bool create,
                                            TableUser user = TableUser::command);

// Keeps the admin bindings journal in step with the table: `client` null for
// an unbind. Flushed before it returns.
Expected<void, std::string> record_admin_binding(OpenTable& open, std::string_view extension,
                                                 const alloc::ClientRef* client);

// The orderly stop: flush the table, then write the marker (itself flushed).
Expected<void, std::string> mark_table_clean(OpenTable& open);

}  // namespace tsunagu::lanagent
