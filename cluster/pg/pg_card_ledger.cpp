#include "cluster/pg/pg_card_ledger.hpp"

#include <string>

namespace tsunagu::cluster {

namespace {

using rendezvous::CardAccount;
using rendezvous::CardEventKind;
using rendezvous::LedgerOutcome;
using rendezvous::LedgerResult;

PgError bad_row(std::string_view what) { return PgError{PgErrc::bad_result, "", "unreadable row: " + std::string(what)}; }

// The outcome names card_move_units(), card_revoke() and card_set_password()
// return (cluster/schema/001_initial.sql, 006_card_ledger.sql).
std::optional<LedgerOutcome> outcome_named(std::string_view name) {
  if (name == "done") return LedgerOutcome::done;
  if (name == "exhausted") return LedgerOutcome::exhausted;
  if (name == "no_units") return LedgerOutcome::no_units;
  if (name == "revoked") return LedgerOutcome::revoked;
  if (name == "unknown_card") return LedgerOutcome::unknown_card;
  if (name == "already") return LedgerOutcome::already;
  return std::nullopt;
}

void move_units(PgTurn& turn, CardEventKind kind, uint64_t serial, uint64_t units, int64_t now,
                std::string_view note, PgDone<LedgerResult> done) {
  queue_statement<LedgerResult>(
      turn,
      "SELECT outcome, moved, left_after FROM card_move_units($1::bigint, $2::bigint, $3::smallint, $4::bigint, "
      "$5::text)",
      {std::to_string(serial), std::to_string(units), std::to_string(static_cast<int>(kind)), std::to_string(now),
       std::string(note)},
      std::move(done), [](const PgRows& rows) -> Expected<LedgerResult, PgError> {
        auto outcome = outcome_named(rows.text(0, "outcome").value_or(""));
        auto moved = rows.integer(0, "moved");
        auto left = rows.integer(0, "left_after");
        if (!outcome || !moved || !left || *moved < 0 || *left < 0) return Unexpected(bad_row("card_move_units"));
        return LedgerResult{*outcome, static_cast<uint64_t>(*moved), static_cast<uint64_t>(*left)};
      });
}

std::optional<CardAccount> card_from_row(const PgRows& rows) {
  auto serial = rows.integer(0, "serial");
  auto card_id = rows.text(0, "card_id");
  auto password_hash = rows.text(0, "password_hash");
  auto issued = rows.integer(0, "units_issued");
  auto left = rows.integer(0, "units_left");
  auto issued_at = rows.integer(0, "issued_at");
  auto expires_at = rows.integer(0, "expires_at");
  auto revoked = rows.boolean(0, "revoked");
  auto revoked_at = rows.integer(0, "revoked_at");
  auto events = rows.integer(0, "events");
  auto password_set_at = rows.integer(0, "password_set_at");
  if (!serial || !card_id || !password_hash || !issued || !left || !issued_at || !expires_at || !revoked ||
      !revoked_at || !events || !password_set_at)
    return std::nullopt;
  CardAccount card;
  card.serial = static_cast<uint64_t>(*serial);
  card.card_id = *card_id;
  card.password_hash = *password_hash;
  card.units_issued = static_cast<uint64_t>(*issued);
  card.units_left = static_cast<uint64_t>(*left);
  card.issued_at = *issued_at;
  card.expires_at = *expires_at;
  card.revoked = *revoked;
  card.revoked_at = *revoked_at;
  card.events = static_cast<uint64_t>(*events);
  card.password_set_at = *password_set_at;
  return card;
}

// A revocation's or password change's answer: the outcome and the units left.
Expected<LedgerResult, PgError> outcome_and_left(const PgRows& rows, std::string_view function) {
  auto outcome = outcome_named(rows.text(0, "outcome").value_or(""));
  auto left = rows.integer(0, "left_after");
  if (!outcome || !left || *left < 0) return Unexpected(bad_row(function));
  return LedgerResult{*outcome, 0, static_cast<uint64_t>(*left)};
}

}  // namespace

void PgCardLedger::add(PgTurn& turn, const CardAccount& card, PgDone<bool> done) {
  queue_statement<bool>(
      turn,
      "WITH card AS (INSERT INTO card_accounts (serial, card_id, password_hash, units_issued, units_left, "
      "issued_at, expires_at, events) VALUES ($1::bigint, $2, $3, $4::bigint, $4::bigint, $5::bigint, "
      "$6::bigint, 1) ON CONFLICT (serial) DO NOTHING RETURNING serial), "
      "issued AS (INSERT INTO card_history (serial, sequence, kind, time, units, units_left) "
      "SELECT serial, 0, 1, $5::bigint, $4::bigint, $4::bigint FROM card) "
      "SELECT count(*) AS added FROM card",
      {std::to_string(card.serial), card.card_id, card.password_hash, std::to_string(card.units_issued),
       std::to_string(card.issued_at), std::to_string(card.expires_at)},
      std::move(done),
      [](const PgRows& rows) -> Expected<bool, PgError> { return rows.integer(0, "added").value_or(0) == 1; });
}

void PgCardLedger::find(PgTurn& turn, uint64_t serial, PgDone<std::optional<CardAccount>> done) {
  queue_statement<std::optional<CardAccount>>(
      turn,
      "SELECT serial, card_id, password_hash, units_issued, units_left, issued_at, expires_at, revoked, "
      "revoked_at, events, password_set_at FROM card_accounts WHERE serial = $1::bigint",
      {std::to_string(serial)}, std::move(done), [](const PgRows& rows) -> Expected<std::optional<CardAccount>, PgError> {
        if (rows.rows.empty()) return std::optional<CardAccount>{};
        auto card = card_from_row(rows);
        if (!card) return Unexpected(bad_row("card_accounts"));
        return std::optional<CardAccount>{std::move(*card)};
      });
}

void PgCardLedger::debit(PgTurn& turn, uint64_t serial, uint64_t units, int64_t now, std::string_view note,
                         PgDone<LedgerResult> done) {
  move_units(turn, CardEventKind::debit, serial, units, now, note, std::move(done));
}

void PgCardLedger::top_up(PgTurn& turn, uint64_t serial, uint64_t units, int64_t now, std::string_view note,
                          PgDone<LedgerResult> done) {
  move_units(turn, CardEventKind::top_up, serial, units, now, note, std::move(done));
}

void PgCardLedger::balance(PgTurn& turn, uint64_t serial, PgDone<std::optional<uint64_t>> done) {
  queue_statement<std::optional<uint64_t>>(
      turn, "SELECT units_left FROM card_accounts WHERE serial = $1::bigint", {std::to_string(serial)},
      std::move(done), [](const PgRows& rows) -> Expected<std::optional<uint64_t>, PgError> {
        if (rows.rows.empty()) return std::optional<uint64_t>{};
        auto left = rows.integer(0, "units_left");
        if (!left || *left < 0) return Unexpected(bad_row("card_accounts.units_left"));
        return std::optional<uint64_t>(static_cast<uint64_t>(*left));
      });
}

void PgCardLedger::revoke(PgTurn& turn, uint64_t serial, int64_t now, std::string_view note,
                          PgDone<LedgerResult> done) {
  queue_statement<LedgerResult>(
      turn, "SELECT outcome, left_after FROM card_revoke($1::bigint, $2::bigint, $3::text)",
      {std::to_string(serial), std::to_string(now), std::string(note)}, std::move(done),
      [](const PgRows& rows) { return outcome_and_left(rows, "card_revoke"); });
}

void PgCardLedger::set_password(PgTurn& turn, uint64_t serial, std::string_view password_hash, int64_t now,
                                std::string_view note, PgDone<LedgerResult> done) {
  queue_statement<LedgerResult>(
      turn, "SELECT outcome, left_after FROM card_set_password($1::bigint, $2::text, $3::bigint, $4::text)",
      {std::to_string(serial), std::string(password_hash), std::to_string(now), std::string(note)}, std::move(done),
      [](const PgRows& rows) { return outcome_and_left(rows, "card_set_password"); });
}

void PgCardLedger::take_serials(PgTurn& turn, uint64_t count, PgDone<uint64_t> done) {
  queue_statement<uint64_t>(turn, "SELECT first_serial FROM card_take_serials($1::bigint)", {std::to_string(count)},
                            std::move(done), [](const PgRows& rows) -> Expected<uint64_t, PgError> {
                              auto first = rows.integer(0, "first_serial");
                              if (!first || *first < 1) return Unexpected(bad_row("card_take_serials"));
                              return static_cast<uint64_t>(*first);
                            });
}

void PgCardLedger::history(PgTurn& turn, uint64_t serial, uint64_t from, size_t limit,
                           PgDone<std::vector<rendezvous::CardEvent>> done) {
  using Events = std::vector<rendezvous::CardEvent>;
  queue_statement<Events>(
      turn,
      "SELECT sequence, kind, time, units, units_left, note FROM card_history WHERE serial = $1::bigint "
      "AND sequence >= $2::bigint ORDER BY sequence LIMIT $3::bigint",
      {std::to_string(serial), std::to_string(from), std::to_string(limit)}, std::move(done),
      [](const PgRows& rows) -> Expected<Events, PgError> {
        Events events;
        for (size_t row = 0; row < rows.rows.size(); ++row) {
          auto sequence = rows.integer(row, "sequence");
          auto kind = rows.integer(row, "kind");
          auto time = rows.integer(row, "time");
          auto units = rows.integer(row, "units");
          auto left = rows.integer(row, "units_left");
          auto note = rows.text(row, "note");
          if (!sequence || !kind || *kind < 1 || *kind > 5 || !time || !units || !left || !note || *sequence < 0 ||
              *units < 0 || *left < 0)
            return Unexpected(bad_row("card_history"));
          events.push_back(rendezvous::CardEvent{static_cast<uint64_t>(*sequence), static_cast<CardEventKind>(*kind),
                                                 *time, static_cast<uint64_t>(*units), static_cast<uint64_t>(*left),
                                                 std::move(*note)});
        }
        return events;
      });
}

void PgCardLedger::revoked_serials(PgTurn& turn, PgDone<std::vector<uint64_t>> done) {
  using Serials = std::vector<uint64_t>;
  queue_statement<Serials>(turn, "SELECT serial FROM card_accounts WHERE revoked ORDER BY serial", {}, std::move(done),
                           [](const PgRows& rows) -> Expected<Serials, PgError> {
                             Serials serials;
                             for (size_t row = 0; row < rows.rows.size(); ++row) {
                               auto serial = rows.integer(row, "serial");
                               if (!serial || *serial < 1) return Unexpected(bad_row("card_accounts.serial"));
                               serials.push_back(static_cast<uint64_t>(*serial));
                             }
                             return serials;
                           });
}

}  // namespace tsunagu::cluster
