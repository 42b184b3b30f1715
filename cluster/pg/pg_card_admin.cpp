#include "cluster/pg/pg_card_admin.hpp"

#include <functional>

#include "cluster/pg/pg_card_ledger.hpp"
#include "cluster/pg/pg_turn.hpp"

namespace tsunagu::cluster {

namespace {

using rendezvous::CardAccount;
using rendezvous::CardEvent;
using rendezvous::LedgerResult;

// The one statement `queue` puts on a turn, run in its own transaction.
template <class T>
Expected<T, std::string> run_one(PgConnection& connection, const std::function<void(PgTurn&, PgDone<T>)>& queue) {
  PgTurn turn;
  std::optional<Expected<T, PgError>> answer;
  queue(turn, [&answer](Expected<T, PgError> result) { answer.emplace(std::move(result)); });
  run_turn(connection, turn);
  if (!answer) return Unexpected(std::string("PostgreSQL: no answer"));
  if (!*answer) return Unexpected("PostgreSQL: " + answer->error().detail);
  return std::move(**answer);
}

}  // namespace

Expected<uint64_t, std::string> pg_take_card_serials(PgConnection& connection, uint64_t count) {
  PgCardLedger ledger;
  return run_one<uint64_t>(connection, [&](PgTurn& turn, PgDone<uint64_t> done) {
    ledger.take_serials(turn, count, std::move(done));
  });
}

Expected<void, std::string> pg_add_cards(PgConnection& connection, const std::vector<CardAccount>& cards) {
  // Not run_turn: it would commit the others without a card its statement
  // could not add. One explicit transaction, rolled back on the first miss.
  if (auto begun = connection.exec("BEGIN"); !begun) return Unexpected("PostgreSQL: " + begun.error().detail);
  PgCardLedger ledger;
  std::optional<std::string> failure;
  for (const auto& card : cards) {
    PgTurn turn;
    ledger.add(turn, card, [&](Expected<bool, PgError> added) {
      if (!added) failure = "PostgreSQL: " + added.error().detail;
      else if (!*added) failure = "serial " + std::to_string(card.serial) + " is already in the ledger";
    });
    for (auto& statement : turn.take()) statement.done(connection.exec(statement.sql, statement.params));
    if (failure) break;
  }
  if (failure) {
    (void)connection.exec("ROLLBACK");
    return Unexpected(*failure);
  }
  if (auto committed = connection.exec("COMMIT"); !committed)
    return Unexpected("PostgreSQL: " + committed.error().detail);
  return {};
}

Expected<std::optional<CardAccount>, std::string> pg_find_card(PgConnection& connection, uint64_t serial) {
  PgCardLedger ledger;
  using Found = std::optional<CardAccount>;
  return run_one<Found>(connection, [&](PgTurn& turn, PgDone<Found> done) { ledger.find(turn, serial, std::move(done)); });
}

Expected<std::vector<CardEvent>, std::string> pg_card_history(PgConnection& connection, uint64_t serial, uint64_t from,
                                                              size_t limit) {
  PgCardLedger ledger;
  using Events = std::vector<CardEvent>;
  return run_one<Events>(connection, [&](PgTurn& turn, PgDone<Events> done) {
    ledger.history(turn, serial, from, limit, std::move(done));
  });
}

Expected<LedgerResult, std::string> pg_top_up_card(PgConnection& connection, uint64_t serial, uint64_t units,
                                                   int64_t now, std::string_view note) {
  PgCardLedger ledger;
  return run_one<LedgerResult>(connection, [&](PgTurn& turn, PgDone<LedgerResult> done) {
    ledger.top_up(turn, serial, units, now, note, std::move(done));
  });
}

Expected<LedgerResult, std::string> pg_revoke_card(PgConnection& connection, uint64_t serial, int64_t now,
                                                   std::string_view note) {
  PgCardLedger ledger;
  return run_one<LedgerResult>(connection, [&](PgTurn& turn, PgDone<LedgerResult> done) {
    ledger.revoke(turn, serial, now, note, std::move(done));
  });
}

Expected<std::vector<uint64_t>, std::string> pg_revoked_card_serials(PgConnection& connection) {
  PgCardLedger ledger;
  using Serials = std::vector<uint64_t>;
  return run_one<Serials>(connection, [&](PgTurn& turn, PgDone<Serials> done) {
    ledger.revoked_serials(turn, std::move(done));
  });
}

}  // namespace tsunagu::cluster
