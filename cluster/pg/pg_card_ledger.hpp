// The access-card ledger in PostgreSQL (what rendezvous::CardLedger does on
// LMDB), queued on a PgTurn. A debit or top-up is one call of the schema's
// card_move_units(), a revocation one of card_revoke(), a password change one
// of card_set_password() (schema version 6); each locks the card's row, so
// two nodes debiting one card at once never both spend the same units.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

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
  // Outcome done, already (revoked before) or unknown_card.
  void revoke(PgTurn& turn, uint64_t serial, int64_t now, std::string_view note, PgDone<LedgerResult> done);
  // Outcome done, revoked (nothing written) or unknown_card.
  void set_password(PgTurn& turn, uint64_t serial, std::string_view password_hash, int64_t now,
                    std::string_view note, PgDone<LedgerResult> done);
  // `count` fresh serials, consecutive, never handed out again (committed
  // or not); the first.
  void take_serials(PgTurn& turn, uint64_t count, PgDone<uint64_t> done);
  // Events of one card from sequence `from`, oldest first, at most `limit`.
  void history(PgTurn& turn, uint64_t serial, uint64_t from, size_t limit,
               PgDone<std::vector<rendezvous::CardEvent>> done);
  // Every revoked serial in order (what `card publish` signs).
  void revoked_serials(PgTurn& turn, PgDone<std::vector<uint64_t>> done);
};

}  // namespace tsunagu::cluster
