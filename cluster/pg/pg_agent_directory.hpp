// The LAN agents' enrolments in cluster mode (`run --pg`):
// rendezvous::AgentDirectory on PostgreSQL, read on the account directory's
// read connection (PgReader: one blocking round trip per read, bounded when
// the server is away). An agent's hello reads its routes' owners; a lookup
// of EXT@DOMAIN or +NUMBER that no agent linked here holds reads its route.
// Enrolments change only by `agent --pg ... enroll|remove`, so the node
// writes nothing here.
#pragma once

#include <memory>

#include "cluster/pg/pg_agent_store.hpp"
#include "cluster/pg/pg_reader.hpp"
#include "rendezvous/agent_directory.hpp"

namespace tsunagu::cluster {

class PgAgentDirectory final : public rendezvous::AgentDirectory {
 public:
  explicit PgAgentDirectory(std::shared_ptr<PgReader> reader) : reader_(std::move(reader)) {}
  Expected<std::optional<std::string>, StoreError> domain_owner(std::string_view domain) override;
  Expected<std::optional<std::string>, StoreError> prefix_owner(std::string_view prefix) override;
  Expected<std::optional<std::string>, StoreError> route_of(std::string_view user_id) override;

 private:
  std::shared_ptr<PgReader> reader_;
  PgAgentStore agents_;
};

}  // namespace tsunagu::cluster
