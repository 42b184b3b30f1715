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
#include "rendezvous/account_admin.hpp"

namespace tsunagu::cluster {

rendezvous::AdminResult<void> pg_add_account(PgConnection& connection, const rendezvous::NewAccount& account,
                                             uint32_t quarantine_days, uint64_t now_unix);
rendezvous::AdminResult<void> pg_remove_account(PgConnection& connection, std::string_view user_id, uint64_t now_unix);
// Every account in byte order of the ID, a page at a time into `each`.
rendezvous::AdminResult<void> pg_list_accounts(PgConnection& connection,
                                               const std::function<void(const rendezvous::Account&)>& each);

}  // namespace tsunagu::cluster
