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
// on a second connection of the loop's own, one round trip each, since the
// handlers that need them answer in the same call. That costs the loop one
// round trip per read (tens of microseconds on a local unix socket) and is
// bounded when the server is away: a failed read marks the server down for
// `read_retry_ms`, and reads until then fail at once (503) without touching
// the network; a connection attempt waits at most connect_timeout seconds
// (set in the conninfo when it names none).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_turn.hpp"
#include "rendezvous/account_store.hpp"

struct uv_loop_s;

namespace tsunagu::cluster {

class PgAccountDirectory final : public rendezvous::AccountDirectory {
 public:
  using Account = rendezvous::Account;
  using LoginRecord = rendezvous::LoginRecord;
  static constexpr uint64_t read_retry_ms = 1000;
  static constexpr int default_connect_timeout_s = 2;

  // Connects both connections, checks the schema is this binary's version
  // and reads (or, first in the cluster, writes) the shared dummy-salt key.
  static Expected<std::unique_ptr<PgAccountDirectory>, PgError> open(uv_loop_s* loop, const std::string& conninfo);
  ~PgAccountDirectory() override;

  Expected<std::optional<Account>, StoreError> find(std::string_view user_id) override;
  Expected<std::optional<uint64_t>, StoreError> removed_at(std::string_view user_id) override;
  Expected<uint64_t, StoreError> epoch() override;
  Expected<std::optional<LoginRecord>, StoreError> last_login(std::string_view user_id) override;
  // Registration is not in cluster mode yet (NodeCore refuses it first).
  Expected<bool, StoreError> create(const Account& account) override;
  Expected<void, StoreError> update(const Account& account) override;
  Expected<void, StoreError> record_login(std::string_view user_id, const LoginRecord& record) override;
  const Bytes& dummy_salt_key() const override { return dummy_salt_key_; }
  bool writes_pending() const override { return current_ && current_->outstanding > 0; }
  void commit_turn(std::function<void(std::optional<StoreError>)> done) override;

  // Answers what is in flight, fails what is queued and stops the worker;
  // before the loop's last run (the daemon's shutdown).
  void close();
  uint64_t turns_committed() const { return committer_ ? committer_->turns_committed() : 0; }
  uint64_t turns_failed() const { return committer_ ? committer_->turns_failed() : 0; }

 private:
  // The writes of one NodeCore turn: its `done` runs when the last answer is in.
  struct TurnWrites {
    size_t outstanding = 0;
    std::optional<PgError> error;
    std::function<void(std::optional<StoreError>)> done;
  };
  PgAccountDirectory() = default;
  // Runs the one statement `queue` puts on a turn, on the read connection.
  template <class T>
  Expected<T, StoreError> read(const std::function<void(PgTurn&, PgDone<T>)>& queue);
  template <class T>
  PgDone<T> write_done();
  static void finish(TurnWrites& writes);

  uv_loop_s* loop_ = nullptr;
  std::unique_ptr<PgConnection> reader_;
  uint64_t reader_down_until_ms_ = 0;
  std::unique_ptr<PgGroupCommitter> committer_;
  PgAccountStore accounts_;
  std::shared_ptr<TurnWrites> current_;
  Bytes dummy_salt_key_;
};

// A PgError as the node's storage error (503 to the client; the detail goes to the log).
storage::StoreError store_error(const PgError& error);

}  // namespace tsunagu::cluster
