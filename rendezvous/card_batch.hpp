// `card issue`'s work (docs/cards.md, "Commands"): a batch of cards signed,
// their passwords derived and hashed, their ledger entries added in one
// transaction; and only once that transaction is durable, their files
// (.card, the QR PNG) and the list with the passwords. A crash or a failed
// commit before then leaves no card file without its ledger entry: a card in
// someone's hands that the node does not know would be refused as unknown.
// A crash after the commit leaves ledger entries without files, which nobody
// holds (the serials are not reused; `card revoke` retires them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "base/progress.hpp"
#include "cards/card.hpp"
#include "rendezvous/card_issuer.hpp"
#include "rendezvous/card_ledger.hpp"
#include "security/passwords.hpp"

namespace tsunagu::rendezvous {

struct CardBatch {
  uint64_t units = 0;
  std::vector<cards::Area> areas;
  uint32_t group = 0;
  uint64_t count = 1;
  uint32_t days = 365;
  std::string out;  // the directory the files go to (made 0700)
  int64_t now = 0;  // Unix seconds: the card ID's date and the expiry count from it
  security::ScryptParameters password_hashing;
};

struct IssuedCard {
  uint64_t serial = 0;
  std::string card_id;
  std::string password;
  std::string file;  // OUT/<card ID>.card
};

struct IssuedBatch {
  std::vector<IssuedCard> cards;
  std::string list_file;                   // OUT/cards.tsv (serial, card ID, password, file; 0600)
  std::vector<std::string> images_missed;  // PNGs not written (a card too large for a QR code), with why
};

// Where a batch's ledger entries go: the deployment's LMDB, or a cluster's
// PostgreSQL (`card issue --pg`, node/card_commands.cpp).
class CardBatchLedger {
 public:
  virtual ~CardBatchLedger() = default;
  // `count` fresh consecutive serials, never handed out again; the first.
  virtual Expected<uint64_t, std::string> take_serials(uint64_t count) = 0;
  // Every entry, durably, or none (an error saying why).
  virtual Expected<void, std::string> add_all(const std::vector<CardAccount>& accounts) = 0;
};

// `progress` shows "issuing" (sign, hash, ledger) and then "writing".
Expected<IssuedBatch, std::string> issue_card_batch(CardBatchLedger& ledger, const CardIssuer& issuer,
                                                    const CardBatch& batch, ProgressReport& progress);
// The same into the LMDB ledger, serials and entries in one transaction.
Expected<IssuedBatch, std::string> issue_card_batch(storage::Environment& environment, CardLedger& ledger,
                                                    const CardIssuer& issuer, const CardBatch& batch,
                                                    ProgressReport& progress);

}  // namespace tsunagu::rendezvous
