// `tsunagu-rendezvous card issue|topup|revoke|show|publish --pg CONNINFO`:
// the operator's card ledger changes and reads on a cluster's PostgreSQL,
// as the LMDB commands make them (rendezvous/card_ledger.hpp). Each call is
// one transaction; a batch's cards are added in one, all or none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/pg/pg_connection.hpp"
#include "rendezvous/card_ledger.hpp"

namespace tsunagu::cluster {

// `count` fresh consecutive serials (card_take_serials(), committed at once:
// a batch that then fails leaves a gap, never a serial used twice); the first.
Expected<uint64_t, std::string> pg_take_card_serials(PgConnection& connection, uint64_t count);
// Adds every card in one transaction; nothing when one serial is taken.
Expected<void, std::string> pg_add_cards(PgConnection& connection, const std::vector<rendezvous::CardAccount>& cards);
Expected<std::optional<rendezvous::CardAccount>, std::string> pg_find_card(PgConnection& connection, uint64_t serial);
Expected<std::vector<rendezvous::CardEvent>, std::string> pg_card_history(PgConnection& connection, uint64_t serial,
                                                                         uint64_t from, size_t limit);
Expected<rendezvous::LedgerResult, std::string> pg_top_up_card(PgConnection& connection, uint64_t serial,
                                                               uint64_t units, int64_t now, std::string_view note);
Expected<rendezvous::LedgerResult, std::string> pg_revoke_card(PgConnection& connection, uint64_t serial, int64_t now,
                                                               std::string_view note);
Expected<std::vector<uint64_t>, std::string> pg_revoked_card_serials(PgConnection& connection);

}  // namespace tsunagu::cluster
