#include "cluster/pg/pg_agent_directory.hpp"

namespace tsunagu::cluster {

using Owner = std::optional<std::string>;

Expected<Owner, storage::StoreError> PgAgentDirectory::domain_owner(std::string_view domain) {
  return reader_->read<Owner>([&](PgTurn& turn, PgDone<Owner> done) { agents_.domain_owner(turn, domain, std::move(done)); });
}

Expected<Owner, storage::StoreError> PgAgentDirectory::prefix_owner(std::string_view prefix) {
  return reader_->read<Owner>([&](PgTurn& turn, PgDone<Owner> done) { agents_.prefix_owner(turn, prefix, std::move(done)); });
}

Expected<Owner, storage::StoreError> PgAgentDirectory::route_of(std::string_view user_id) {
  return reader_->read<Owner>([&](PgTurn& turn, PgDone<Owner> done) { agents_.route_of(turn, user_id, std::move(done)); });
}

}  // namespace tsunagu::cluster
