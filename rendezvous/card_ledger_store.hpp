// What the node (NodeCore) asks of the access-card ledger, wherever it lives:
// the node's own LMDB (CardLedger in the loop turn's transaction, the
// embedded default) or PostgreSQL shared by a cluster of nodes
// (cluster/pg/pg_card_ledger_store.hpp), so a card's units are one balance
// whichever node its calls go through. Reads answer at once. Writes join the
// current loop turn and are durable only once the turn is: NodeCore holds
// their replies until then (AccountDirectory::commit_turn).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rendezvous/card_ledger.hpp"

namespace tsunagu::rendezvous {

class CardLedgerStore {
 public:
  using StoreError = storage::StoreError;
  virtual ~CardLedgerStore() = default;

  virtual Expected<std::optional<CardAccount>, StoreError> find(uint64_t serial) = 0;
  // A call's period (CardLedger::debit), in this turn.
  virtual Expected<LedgerResult, StoreError> debit(uint64_t serial, uint64_t units, int64_t now,
                                                   std::string_view note) = 0;
  // The holder's password (CardLedger::set_password), in this turn.
  virtual Expected<LedgerResult, StoreError> set_password(uint64_t serial, std::string password_hash, int64_t now,
                                                          std::string_view note) = 0;
};

}  // namespace tsunagu::rendezvous
