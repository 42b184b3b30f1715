#include "cluster/pg/pg_card_ledger.hpp"

#include <string>

namespace tsunagu::cluster {

namespace {

using rendezvous::CardAccount;
using rendezvous::CardEventKind;
using rendezvous::LedgerOutcome;
using rendezvous::LedgerResult;

PgError bad_row(std::string_view what) { return PgError{PgErrc::bad_result, "", "unreadable row: " + std::string(what)}; }

// The outcome names card_move_units() returns (cluster/schema/001_initial.sql).
std::optional<LedgerOutcome> outcome_named(std::string_view name) {
  if (name == "done") return LedgerOutcome::done;
  if (name == "exhausted") return LedgerOutcome::exhausted;
  if (name == "no_units") return LedgerOutcome::no_units;
  if (name == "revoked") return LedgerOutcome::revoked;
  if (name == "unknown_card") return LedgerOutcome::unknown_card;
  return std::nullopt;
}

void move_units(PgTurn& turn, CardEventKind kind, uint64_t serial, uint64_t units, int64_t now,
                std::string_view note, PgDone<LedgerResult> done) {
  turn.add("SELECT outcome, moved, left_after FROM card_move_units($1::bigint, $2::bigint, $3::smallint, "
           "$4::bigint, $5::text)",
           {std::to_string(serial), std::to_string(units), std::to_string(static_cast<int>(kind)),
            std::to_string(now), std::string(note)},
           [done = std::move(done)](PgResult result) {
             if (!result) {
               done(Unexpected(result.error()));
               return;
             }
             auto outcome = outcome_named(result->text(0, "outcome").value_or(""));
             auto moved = result->integer(0, "moved");
             auto left = result->integer(0, "left_after");
             if (!outcome || !moved || !left || *moved < 0 || *left < 0) {
               done(Unexpected(bad_row("card_move_units")));
               return;
             }
             done(LedgerResult{*outcome, static_cast<uint64_t>(*moved), static_cast<uint64_t>(*left)});
           });
}

}  // namespace

void PgCardLedger::add(PgTurn& turn, const CardAccount& card, PgDone<bool> done) {
  turn.add("WITH card AS (INSERT INTO card_accounts (serial, card_id, password_hash, units_issued, units_left, "
           "issued_at, expires_at, events) VALUES ($1::bigint, $2, $3, $4::bigint, $4::bigint, $5::bigint, "
           "$6::bigint, 1) ON CONFLICT (serial) DO NOTHING RETURNING serial), "
           "issued AS (INSERT INTO card_history (serial, sequence, kind, time, units, units_left) "
           "SELECT serial, 0, 1, $5::bigint, $4::bigint, $4::bigint FROM card) "
           "SELECT count(*) AS added FROM card",
           {std::to_string(card.serial), card.card_id, card.password_hash, std::to_string(card.units_issued),
            std::to_string(card.issued_at), std::to_string(card.expires_at)},
           [done = std::move(done)](PgResult result) {
             if (!result) {
               done(Unexpected(result.error()));
               return;
             }
             done(result->integer(0, "added").value_or(0) == 1);
           });
}

void PgCardLedger::find(PgTurn& turn, uint64_t serial, PgDone<std::optional<CardAccount>> done) {
  turn.add("SELECT serial, card_id, password_hash, units_issued, units_left, issued_at, expires_at, revoked, "
           "revoked_at, events FROM card_accounts WHERE serial = $1::bigint",
           {std::to_string(serial)}, [done = std::move(done)](PgResult result) {
             if (!result) {
               done(Unexpected(result.error()));
               return;
             }
             if (result->rows.empty()) {
               done(std::optional<CardAccount>{});
               return;
             }
             const PgRows& rows = *result;
             auto serial_value = rows.integer(0, "serial");
             auto card_id = rows.text(0, "card_id");
             auto password_hash = rows.text(0, "password_hash");
             auto issued = rows.integer(0, "units_issued");
             auto left = rows.integer(0, "units_left");
             auto issued_at = rows.integer(0, "issued_at");
             auto expires_at = rows.integer(0, "expires_at");
             auto revoked = rows.boolean(0, "revoked");
             auto revoked_at = rows.integer(0, "revoked_at");
             auto events = rows.integer(0, "events");
             if (!serial_value || !card_id || !password_hash || !issued || !left || !issued_at || !expires_at ||
                 !revoked || !revoked_at || !events) {
               done(Unexpected(bad_row("card_accounts")));
               return;
             }
             CardAccount card;
             card.serial = static_cast<uint64_t>(*serial_value);
             card.card_id = *card_id;
             card.password_hash = *password_hash;
             card.units_issued = static_cast<uint64_t>(*issued);
             card.units_left = static_cast<uint64_t>(*left);
             card.issued_at = *issued_at;
             card.expires_at = *expires_at;
             card.revoked = *revoked;
             card.revoked_at = *revoked_at;
             card.events = static_cast<uint64_t>(*events);
             done(std::optional<CardAccount>{std::move(card)});
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
  turn.add("SELECT units_left FROM card_accounts WHERE serial = $1::bigint", {std::to_string(serial)},
           [done = std::move(done)](PgResult result) {
             if (!result) {
               done(Unexpected(result.error()));
               return;
             }
             if (result->rows.empty()) {
               done(std::optional<uint64_t>{});
               return;
             }
             auto left = result->integer(0, "units_left");
             if (!left || *left < 0) {
               done(Unexpected(bad_row("card_accounts.units_left")));
               return;
             }
             done(std::optional<uint64_t>(static_cast<uint64_t>(*left)));
           });
}

}  // namespace tsunagu::cluster
