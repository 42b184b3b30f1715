// The node's access-card ledger in cluster mode (`tsunagu-rendezvous run
// --pg`): rendezvous::CardLedgerStore on PostgreSQL's `card_accounts` and
// `card_history`, so a card's units are one balance on every node
// (docs/cluster.md, "Access cards").
//
// A card's entry is read on the account directory's read connection
// (PgReader), one round trip. A debit or a password change is decided on
// that entry (as CardLedger decides on LMDB's) and written in the loop
// turn's group commit (PgAccountDirectory::write_done) as one call of
// card_move_units() or card_set_password(), which lock the card's row: the
// replies (card_units, the password's success) leave after the COMMIT, and
// two nodes debiting one card never spend the same units, since each debit
// takes at most what the locked row still holds. Moves written but not yet
// answered are counted into this node's later reads, so a second period of
// the same card in the meantime sees the first.
//
// What the node answers from its read may be stale by what another node
// wrote between the read and the commit: the units in a card_units, or a
// period granted that the commit then found the card could pay only in part
// (the locked debit takes what is left, never more). The next period's read
// sees the row as it is and ends the call then.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_card_ledger.hpp"
#include "rendezvous/card_ledger_store.hpp"

namespace tsunagu::cluster {

class PgCardLedgerStore final : public rendezvous::CardLedgerStore {
 public:
  using CardAccount = rendezvous::CardAccount;
  using LedgerResult = rendezvous::LedgerResult;
  // `accounts` (its read connection and its turn) must outlive this.
  explicit PgCardLedgerStore(PgAccountDirectory& accounts)
      : accounts_(accounts), reader_(accounts.reader()), unanswered_(std::make_shared<Unanswered>()) {}

  Expected<std::optional<CardAccount>, StoreError> find(uint64_t serial) override;
  Expected<LedgerResult, StoreError> debit(uint64_t serial, uint64_t units, int64_t now,
                                           std::string_view note) override;
  Expected<LedgerResult, StoreError> set_password(uint64_t serial, std::string password_hash, int64_t now,
                                                  std::string_view note) override;

  // Debits whose commit took less than this node's read had granted (another
  // node spent the card meanwhile).
  uint64_t debits_short() const { return unanswered_->debits_short; }

 private:
  // Writes queued but not answered yet, by serial. Once the row's event
  // count reaches events_after they are in it (committed, the answer not yet
  // delivered to the loop), and are not counted again.
  struct UnansweredCard {
    uint64_t units_debited = 0;
    std::optional<std::string> password_hash;
    int64_t password_set_at = 0;
    size_t writes = 0;
    uint64_t events_after = 0;
  };
  UnansweredCard& note_write(const CardAccount& card);
  struct Unanswered {
    std::map<uint64_t, UnansweredCard> cards;
    uint64_t debits_short = 0;
  };
  // The write's PgDone: the turn's write accounting, then the serial's entry forgotten.
  PgDone<LedgerResult> written(uint64_t serial, uint64_t units_granted);

  PgAccountDirectory& accounts_;
  std::shared_ptr<PgReader> reader_;
  PgCardLedger ledger_;
  std::shared_ptr<Unanswered> unanswered_;
};

}  // namespace tsunagu::cluster
