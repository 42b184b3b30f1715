// The node's ledger of access cards (seed 002, [0043]-[0044]): units per card,
// every debit, top-up and revocation, in LMDB beside the accounts. The card
// itself carries its units only for display; this ledger decides. Callers pass
// the write transaction so debits can share the group commit of the call's
// state.
//
// Databases: "card_accounts" (be64 serial -> account record),
// "card_history" (be64 serial be64 sequence -> event record),
// "card_meta" ("next_serial" -> be64, so a serial is never reused).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

struct CardAccount {
  uint64_t serial = 0;
  std::string card_id;        // cards::CardId::text()
  std::string password_hash;  // cards::hash_card_password(); empty: no password set
  uint64_t units_issued = 0;
  uint64_t units_left = 0;
  int64_t issued_at = 0;  // Unix seconds
  int64_t expires_at = 0;
  bool revoked = false;
  int64_t revoked_at = 0;
  uint64_t events = 0;  // history entries written; the next one's sequence
  // When the holder last set the card's password (set_password); 0: the
  // password printed beside the card (the issuer's) is in force.
  int64_t password_set_at = 0;
  bool operator==(const CardAccount&) const = default;
};

// password_set: the holder chose the card's password (seed 002 [0030]); the
// hash is in the account, the event only says when.
enum class CardEventKind : uint8_t { issued = 1, debit = 2, top_up = 3, revoked = 4, password_set = 5 };
const char* card_event_name(CardEventKind kind);

struct CardEvent {
  uint64_t sequence = 0;
  CardEventKind kind = CardEventKind::issued;
  int64_t time = 0;
  uint64_t units = 0;          // issued, debited or added
  uint64_t units_left = 0;     // after the event
  std::string note;            // e.g. the call and the route debited for; at most 255 bytes (cut)
  bool operator==(const CardEvent&) const = default;
};

// Record codecs (a version byte first); decode returns nullopt for anything
// malformed or above the size limits.
inline constexpr size_t max_card_account_record_size = 1024;
inline constexpr size_t max_card_event_record_size = 300;
Bytes encode_card_account(const CardAccount& account);
std::optional<CardAccount> decode_card_account(ByteView bytes, uint64_t serial);
Bytes encode_card_event(const CardEvent& event);
std::optional<CardEvent> decode_card_event(ByteView bytes, uint64_t sequence);

enum class LedgerOutcome {
  done,          // debited in full, topped up, revoked
  exhausted,     // debit: the card had fewer units than asked; what it had was debited, it now has none
  no_units,      // debit: the card had none; nothing written
  revoked,       // the card is revoked; nothing written
  unknown_card,  // no such serial; nothing written
  already,       // revoke: was revoked before
};
const char* ledger_outcome_name(LedgerOutcome outcome);

struct LedgerResult {
  LedgerOutcome outcome = LedgerOutcome::done;
  uint64_t units = 0;       // debited or added
  uint64_t units_left = 0;  // after
};

class CardLedger {
 public:
  using StoreError = storage::StoreError;
  using Transaction = storage::Transaction;

  // Opens (creating) the ledger's databases; once at start-up, before any
  // write transaction of the caller is open.
  static Expected<CardLedger, StoreError> open(storage::Environment& env);

  // `count` fresh serials, consecutive; returns the first. Serials start at 1.
  Expected<uint64_t, StoreError> allocate_serials(Transaction& txn, uint64_t count);
  // Adds a card with units_left = units_issued and an "issued" event. false
  // (nothing written) when the serial is already in the ledger.
  Expected<bool, StoreError> add(Transaction& txn, CardAccount account);
  Expected<std::optional<CardAccount>, StoreError> find(Transaction& txn, uint64_t serial);

  Expected<LedgerResult, StoreError> debit(Transaction& txn, uint64_t serial, uint64_t units, int64_t now,
                                           std::string_view note);
  Expected<LedgerResult, StoreError> top_up(Transaction& txn, uint64_t serial, uint64_t units, int64_t now,
                                            std::string_view note);
  Expected<LedgerResult, StoreError> revoke(Transaction& txn, uint64_t serial, int64_t now, std::string_view note);
  // The holder's password replaces the card's (cards::hash_card_password()
  // of the new one): the one printed beside the QR code is refused from then
  // on, and the account's password_set_at is `now`. A revoked card keeps its
  // password (outcome revoked, nothing written).
  Expected<LedgerResult, StoreError> set_password(Transaction& txn, uint64_t serial, std::string password_hash,
                                                  int64_t now, std::string_view note);

  // Events of one card from sequence `from`, oldest first, at most `limit`.
  Expected<std::vector<CardEvent>, StoreError> history(Transaction& txn, uint64_t serial, uint64_t from,
                                                       size_t limit);
  // Every revoked serial in order: the revocation list terminals are sent.
  Expected<std::vector<uint64_t>, StoreError> revoked_serials(Transaction& txn);

 private:
  Expected<void, StoreError> write(Transaction& txn, CardAccount& account, CardEventKind kind, int64_t now,
                                   uint64_t units, std::string_view note);

  storage::DatabaseHandle accounts_ = 0;
  storage::DatabaseHandle history_ = 0;
  storage::DatabaseHandle meta_ = 0;
};

}  // namespace tsunagu::rendezvous
