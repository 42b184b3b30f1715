// The node's accounts in cluster mode (`tsunagu-rendezvous run --pg`):
// rendezvous::AccountDirectory on PostgreSQL, so every node serves the same
// accounts (docs/cluster.md, "The node on PostgreSQL").
//
// Writes (the last login, a password migrated to SCRAM) join the loop turn's
// PgGroupCommitter transaction; NodeCore releases the turn's replies when
// that transaction's answers come back (commit_turn's `done`), or answers
// each one 503 when it did not commit.
//
// Reads (find an account, the epoch, a removed ID) are blocking statements
// on a second connection of the loop's own (PgReader), one round trip each,
// since the handlers that need them answer in the same call. The last login
// a lookup of an offline user reports is read off the loop instead, on the
// committer's worker (last_login_then), the reply waiting for it. Accounts found
// are kept in a PgAccountCache, emptied when the shared epoch moves on, so
// the reads most requests make (the session check, the account looked up)
// cost no round trip.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "cluster/pg/pg_account_cache.hpp"
#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_reader.hpp"
#include "cluster/pg/pg_turn.hpp"
#include "rendezvous/account_store.hpp"

struct uv_loop_s;

namespace tsunagu::cluster {

class PgAccountDirectory final : public rendezvous::AccountDirectory {
 public:
  using Account = rendezvous::Account;
  using LoginRecord = rendezvous::LoginRecord;
  static constexpr int default_connect_timeout_s = 2;
  struct Options {
    size_t cache_entries = 100'000;      // [cluster] account_cache; 0: every read goes to the server
    uint64_t cache_max_age_ms = 60'000;  // bounds what changes without the epoch (a display name)
  };

  // Connects both connections, checks the schema is this binary's version
  // and reads (or, first in the cluster, writes) the shared dummy-salt key.
  static Expected<std::unique_ptr<PgAccountDirectory>, PgError> open(uv_loop_s* loop, const std::string& conninfo,
                                                                    Options options);
  ~PgAccountDirectory() override;

  Expected<std::optional<Account>, StoreError> find(std::string_view user_id) override;
  Expected<std::optional<uint64_t>, StoreError> removed_at(std::string_view user_id) override;
  Expected<uint64_t, StoreError> epoch() override;
  Expected<std::optional<LoginRecord>, StoreError> last_login(std::string_view user_id) override;
  // Queued on the committer's turn (its worker and connection, not the
  // loop's read connection): answered when that turn's transaction is done,
  // with the turn's writes or alone.
  void last_login_then(std::string_view user_id, LastLoginDone done) override;
  // Open registration: schema 4's account_add() on the read connection, at
  // once (autocommit), so the ID is taken cluster-wide before the reply. It
  // repeats NodeCore's checks in one locked statement: an ID enrolled into an
  // agent's route or removed (quarantine) since NodeCore checked is refused
  // as taken (false), like an ID another node registered meanwhile.
  Expected<bool, StoreError> create(const Account& account) override;
  // accounts.removed_id_quarantine_days, for create()'s check (start and reload).
  void set_removed_id_quarantine_days(uint32_t days) { quarantine_days_ = days; }
  Expected<void, StoreError> update(const Account& account) override;
  Expected<void, StoreError> record_login(std::string_view user_id, const LoginRecord& record) override;
  // The directory's scan: one round trip on the read connection per call
  // (published rows only, by the index of schema version 4).
  Expected<std::vector<Account>, StoreError> list_published(std::string_view after, size_t limit) override;
  // Queued on the turn; until its answer is in, find() answers with the
  // changed account, so a second change in the same turn (or the next, before
  // the commit) builds on the first rather than on the row in PostgreSQL.
  Expected<void, StoreError> update_profile(const Account& account) override;
  const Bytes& dummy_salt_key() const override { return dummy_salt_key_; }
  bool writes_pending() const override { return current_ && current_->outstanding > 0; }
  void commit_turn(std::function<void(std::optional<StoreError>)> done) override;

  // Answers what is in flight, fails what is queued and stops the worker;
  // before the loop's last run (the daemon's shutdown).
  void close();
  uint64_t turns_committed() const { return committer_ ? committer_->turns_committed() : 0; }
  uint64_t turns_failed() const { return committer_ ? committer_->turns_failed() : 0; }
  const PgAccountCache& cache() const { return cache_; }
  // The read connection, for the other stores the node reads in cluster mode (agents).
  std::shared_ptr<PgReader> reader() const { return reader_; }
  PgGroupCommitter& committer() { return *committer_; }
  // A write of this turn queued on committer().turn() by another store the
  // node writes in cluster mode (voicemail): its answer counts towards the
  // turn's writes, whose replies NodeCore holds until they are all in.
  template <class T>
  PgDone<T> write_done() {
    if (!current_) current_ = std::make_shared<TurnWrites>();
    ++current_->outstanding;
    return [writes = current_](Expected<T, PgError> result) {
      if (!result && !writes->error) writes->error = result.error();
      --writes->outstanding;
      finish(*writes);
    };
  }

 private:
  // The writes of one NodeCore turn: its `done` runs when the last answer is in.
  struct TurnWrites {
    size_t outstanding = 0;
    std::optional<PgError> error;
    std::function<void(std::optional<StoreError>)> done;
  };
  explicit PgAccountDirectory(Options options) : cache_(options.cache_entries, options.cache_max_age_ms) {}
  static void finish(TurnWrites& writes);

  std::shared_ptr<PgReader> reader_;
  PgAccountCache cache_;
  std::unique_ptr<PgGroupCommitter> committer_;
  PgAccountStore accounts_;
  std::shared_ptr<TurnWrites> current_;
  Bytes dummy_salt_key_;
  // Profile changes written but not answered yet, by user ID; `sequence`
  // tells a later change of the same account from the one that answered.
  struct UnansweredProfile {
    Account account;
    uint64_t sequence = 0;
  };
  std::map<std::string, UnansweredProfile, std::less<>> unanswered_profiles_;
  uint64_t profile_writes_ = 0;
  uint32_t quarantine_days_ = 0;
};

}  // namespace tsunagu::cluster
