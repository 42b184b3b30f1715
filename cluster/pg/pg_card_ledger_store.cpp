#include "cluster/pg/pg_card_ledger_store.hpp"

#include <algorithm>

namespace tsunagu::cluster {

using rendezvous::LedgerOutcome;

Expected<std::optional<rendezvous::CardAccount>, storage::StoreError> PgCardLedgerStore::find(uint64_t serial) {
  using Found = std::optional<CardAccount>;
  auto found = reader_->read<Found>([&](PgTurn& turn, PgDone<Found> done) { ledger_.find(turn, serial, std::move(done)); });
  if (!found || !found->has_value()) return found;
  auto pending = unanswered_->cards.find(serial);
  if (pending != unanswered_->cards.end() && (*found)->events < pending->second.events_after) {
    CardAccount& card = **found;
    card.units_left -= std::min(card.units_left, pending->second.units_debited);
    if (pending->second.password_hash) {
      card.password_hash = *pending->second.password_hash;
      card.password_set_at = pending->second.password_set_at;
    }
  }
  return found;
}

PgCardLedgerStore::UnansweredCard& PgCardLedgerStore::note_write(const CardAccount& card) {
  UnansweredCard& pending = unanswered_->cards[card.serial];
  ++pending.writes;
  pending.events_after = card.events + pending.writes;
  return pending;
}

PgDone<rendezvous::LedgerResult> PgCardLedgerStore::written(uint64_t serial, uint64_t units_granted) {
  return [turn_write = accounts_.write_done<LedgerResult>(), unanswered = unanswered_, serial,
          units_granted](Expected<LedgerResult, PgError> result) {
    auto pending = unanswered->cards.find(serial);
    if (pending != unanswered->cards.end()) {
      pending->second.units_debited -= std::min(pending->second.units_debited, units_granted);
      if (--pending->second.writes == 0) unanswered->cards.erase(pending);
    }
    if (result && units_granted > 0 && result->units < units_granted) ++unanswered->debits_short;
    turn_write(std::move(result));
  };
}

Expected<rendezvous::LedgerResult, storage::StoreError> PgCardLedgerStore::debit(uint64_t serial, uint64_t units,
                                                                                int64_t now, std::string_view note) {
  auto found = find(serial);
  if (!found) return Unexpected(found.error());
  // Decided as CardLedger::debit decides; card_move_units() decides again on the locked row.
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  const CardAccount& card = **found;
  if (card.revoked) return LedgerResult{LedgerOutcome::revoked, 0, card.units_left};
  if (card.units_left == 0) return LedgerResult{LedgerOutcome::no_units, 0, 0};
  uint64_t taken = std::min(units, card.units_left);
  note_write(card).units_debited += taken;
  ledger_.debit(accounts_.committer().turn(), serial, taken, now, note, written(serial, taken));
  return LedgerResult{taken == units ? LedgerOutcome::done : LedgerOutcome::exhausted, taken, card.units_left - taken};
}

Expected<rendezvous::LedgerResult, storage::StoreError> PgCardLedgerStore::set_password(uint64_t serial,
                                                                                       std::string password_hash,
                                                                                       int64_t now,
                                                                                       std::string_view note) {
  auto found = find(serial);
  if (!found) return Unexpected(found.error());
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  const CardAccount& card = **found;
  if (card.revoked) return LedgerResult{LedgerOutcome::revoked, 0, card.units_left};
  ledger_.set_password(accounts_.committer().turn(), serial, password_hash, now, note, written(serial, 0));
  UnansweredCard& pending = note_write(card);
  pending.password_hash = std::move(password_hash);
  pending.password_set_at = now;
  return LedgerResult{LedgerOutcome::done, 0, card.units_left};
}

}  // namespace tsunagu::cluster
