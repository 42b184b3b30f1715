// The access-card ledger in PostgreSQL (rendezvous::CardLedger's debit,
// top-up and balance), queued on a PgTurn. A debit or top-up is one call of
// the schema's card_move_units(), which locks the card's row: two nodes
// debiting one card at once never both spend the same units.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cluster/pg/pg_account_store.hpp"
#include "rendezvous/card_ledger.hpp"

namespace tsunagu::cluster {

class PgCardLedger {
 public:
  using CardAccount = rendezvous::CardAccount;
  using LedgerResult = rendezvous::LedgerResult;

  // Adds a card with units_left = units_issued and its "issued" event; false
  // (nothing written) when the serial is taken.
  void add(PgTurn& turn, const CardAccount& card, PgDone<bool> done);
  void find(PgTurn& turn, uint64_t serial, PgDone<std::optional<CardAccount>> done);
  void debit(PgTurn& turn, uint64_t serial, uint64_t units, int64_t now, std::string_view note,
             PgDone<LedgerResult> done);
  void top_up(PgTurn& turn, uint64_t serial, uint64_t units, int64_t now, std::string_view note,
              PgDone<LedgerResult> done);
  // The units left, nullopt for an unknown serial.
  void balance(PgTurn& turn, uint64_t serial, PgDone<std::optional<uint64_t>> done);
};

}  // namespace tsunagu::cluster
