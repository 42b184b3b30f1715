// What the node (NodeCore) reads of the LAN agents' enrolments when they are
// not in its own LMDB: in cluster mode (`run --pg`) they are in PostgreSQL
// (cluster/pg/pg_agent_directory.hpp), so an agent enrolled once may link
// to any node of the cluster. The embedded default reads the AgentRegistry
// in the loop turn's LMDB transaction instead. Reads answer at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

class AgentDirectory {
 public:
  using StoreError = storage::StoreError;
  virtual ~AgentDirectory() = default;
  // The agent a domain or number prefix is enrolled for.
  virtual Expected<std::optional<std::string>, StoreError> domain_owner(std::string_view domain) = 0;
  virtual Expected<std::optional<std::string>, StoreError> prefix_owner(std::string_view prefix) = 0;
  // The enrolled route `user_id` lies in (AgentRegistry::route_of).
  virtual Expected<std::optional<std::string>, StoreError> route_of(std::string_view user_id) = 0;
};

}  // namespace tsunagu::rendezvous
