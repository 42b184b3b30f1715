// `tsunagu-rendezvous user add|remove|list --pg CONNINFO`: the operator's
// account changes on a cluster's PostgreSQL, with the checks the LMDB ones
// make (rendezvous/account_admin.hpp): a taken ID, the quarantine of removed
// IDs, an ID inside an agent's enrolled route (`agent --pg`), the epoch moved
// on by a removal. Each call is one transaction.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cluster/pg/pg_connection.hpp"
#include "cluster/pg/pg_reader.hpp"
#include "rendezvous/account_admin.hpp"

namespace tsunagu::cluster {

rendezvous::AdminResult<void> pg_add_account(PgConnection& connection, const rendezvous::NewAccount& account,
                                             uint32_t quarantine_days, uint64_t now_unix);
rendezvous::AdminResult<void> pg_remove_account(PgConnection& connection, std::string_view user_id, uint64_t now_unix);
// Every account in byte order of the ID, a page at a time into `each`.
rendezvous::AdminResult<void> pg_list_accounts(PgConnection& connection,
                                               const std::function<void(const rendezvous::Account&)>& each);

// The web API's admin endpoints on a node in cluster mode (`run --pg`): the
// same statements as the CLI's, each one round trip on the node's read
// connection (autocommit; admin actions are rare), so they block the loop as
// the LMDB ones do. The account is read from the server, not the node's
// account cache: a removed admin loses the role at once on every node.
class PgSharedAccountAdmin final : public rendezvous::SharedAccountAdmin {
 public:
  explicit PgSharedAccountAdmin(std::shared_ptr<PgReader> reader) : reader_(std::move(reader)) {}
  rendezvous::AdminResult<rendezvous::Account> read(std::string_view user_id) override;
  rendezvous::AdminResult<rendezvous::AccountPage> list(std::string_view text, std::string_view cursor,
                                                        size_t limit) override;
  rendezvous::AdminResult<void> add(const rendezvous::NewAccount& account, uint32_t quarantine_days,
                                    uint64_t now_unix) override;
  rendezvous::AdminResult<void> remove(std::string_view user_id, uint64_t now_unix) override;

 private:
  std::shared_ptr<PgReader> reader_;
};

}  // namespace tsunagu::cluster
