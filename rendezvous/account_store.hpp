// Accounts and last-login records in LMDB. Callers pass the transaction so the
// node can group-commit: many requests' writes in one transaction per loop turn.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rendezvous/account.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

class AccountStore {
 public:
  using StoreError = storage::StoreError;
  using Transaction = storage::Transaction;

  // Opens the store in `directory` (the node's data/db directory).
  static Expected<std::unique_ptr<AccountStore>, StoreError> open(const std::string& directory, uint64_t map_size);

  storage::Environment& environment() { return *env_; }
  Expected<Transaction, StoreError> begin_read() { return env_->begin_read(); }
  Expected<Transaction, StoreError> begin_write() { return env_->begin_write(); }

  // false when the user ID is taken. The stored account's generation is the
  // current epoch (a removal always moves the epoch on, so an ID created
  // again never matches a login of its earlier owner).
  Expected<bool, StoreError> create(Transaction& txn, const Account& account);
  Expected<std::optional<Account>, StoreError> find(Transaction& txn, std::string_view user_id);
  // find()'s generation alone (nullopt: no such account), decoding no string.
  Expected<std::optional<uint64_t>, StoreError> generation(Transaction& txn, std::string_view user_id);
  Expected<void, StoreError> update(Transaction& txn, const Account& account);
  // false when there was no such user. Records the removal time (for the
  // quarantine of removed IDs) and moves the epoch on.
  Expected<bool, StoreError> remove(Transaction& txn, std::string_view user_id, uint64_t removed_at);
  // When `user_id` was last removed (Unix seconds), if ever.
  Expected<std::optional<uint64_t>, StoreError> removed_at(Transaction& txn, std::string_view user_id);
  // The account epoch: moved on by every removal and password change, so a
  // running node notices either (another process may have written it) by
  // reading one key. bump_epoch returns the new value; a changed password's
  // account takes it as its generation.
  Expected<uint64_t, StoreError> epoch(Transaction& txn);
  Expected<uint64_t, StoreError> bump_epoch(Transaction& txn);
  // Up to `limit` accounts with IDs >= from, in ID order.
  Expected<std::vector<Account>, StoreError> list(Transaction& txn, std::string_view from, size_t limit);
  Expected<uint64_t, StoreError> count(Transaction& txn);
  // Up to `limit` IDs of accounts inside an agent's route: `+PREFIX` matches
  // IDs that start with it, a domain matches IDs ending in `@domain`. Such IDs
  // belong to the agent (docs/security.md); these accounts predate its
  // enrolment. A domain needs a full scan (IDs sort by their local part).
  Expected<std::vector<std::string>, StoreError> ids_inside(Transaction& txn, std::string_view route, size_t limit);

  // The node's secret for SCRAM's dummy salts (unknown user IDs get
  // HMAC(key, ID), stable, so they cannot be told from accounts).
  const Bytes& dummy_salt_key() const { return dummy_salt_key_; }

  Expected<void, StoreError> record_login(Transaction& txn, std::string_view user_id, const LoginRecord& record);
  Expected<std::optional<LoginRecord>, StoreError> last_login(Transaction& txn, std::string_view user_id);

 private:
  AccountStore() = default;
  Expected<Bytes, StoreError> load_dummy_salt_key();
  std::unique_ptr<storage::Environment> env_;
  storage::DatabaseHandle accounts_ = 0;
  storage::DatabaseHandle logins_ = 0;
  storage::DatabaseHandle meta_ = 0;  // "epoch" -> u64; "removed:<ID>" -> u64 Unix seconds; "scram_dummy_salt_key"
  Bytes dummy_salt_key_;
};

// What the node (NodeCore) asks of the account directory, wherever it lives:
// the node's own LMDB (the embedded default; NodeCore's loop-turn transaction)
// or PostgreSQL shared by a cluster of nodes (cluster/pg/pg_account_directory).
// Reads answer at once, except last_login_then's, which may answer later. Writes join the current loop turn and are durable
// only once the turn is: NodeCore releases the turn's replies after its LMDB
// commit and, when writes_pending(), only after commit_turn()'s `done` says
// this directory committed them too (or answers each 503 when it did not).
class AccountDirectory {
 public:
  using StoreError = storage::StoreError;
  virtual ~AccountDirectory() = default;

  virtual Expected<std::optional<Account>, StoreError> find(std::string_view user_id) = 0;
  // The account's generation alone (nullopt: no such account): all that a
  // token login and the per-request session check read. A directory that
  // can read it more cheaply than find() overrides this.
  virtual Expected<std::optional<uint64_t>, StoreError> generation(std::string_view user_id) {
    auto account = find(user_id);
    if (!account) return Unexpected(account.error());
    if (!account->has_value()) return std::optional<uint64_t>{};
    return std::optional<uint64_t>((*account)->generation);
  }
  virtual Expected<std::optional<uint64_t>, StoreError> removed_at(std::string_view user_id) = 0;
  virtual Expected<uint64_t, StoreError> epoch() = 0;
  virtual Expected<std::optional<LoginRecord>, StoreError> last_login(std::string_view user_id) = 0;
  // The last login for a reply that can wait for it (a lookup of an offline
  // user): `done` runs on the loop, at once here, or once a read that a
  // directory runs off the loop is in (cluster mode), so the loop serves
  // other links meanwhile. `done` may run before this returns.
  using LastLoginDone = std::function<void(Expected<std::optional<LoginRecord>, StoreError>)>;
  virtual void last_login_then(std::string_view user_id, LastLoginDone done) { done(last_login(user_id)); }
  // false when the user ID is taken.
  virtual Expected<bool, StoreError> create(const Account& account) = 0;
  virtual Expected<void, StoreError> update(const Account& account) = 0;
  virtual Expected<void, StoreError> record_login(std::string_view user_id, const LoginRecord& record) = 0;
  // The directory's scan (docs/directory.md): up to `limit` published accounts
  // (Account::publish) with IDs greater than `after`, in byte order of the ID.
  virtual Expected<std::vector<Account>, StoreError> list_published(std::string_view after, size_t limit) = 0;
  // A profile change (profile_set): writes the fields a user may change
  // (rendezvous::apply_profile_change) and nothing else, and never brings
  // back an account removed meanwhile. A later find in the same turn sees it.
  virtual Expected<void, StoreError> update_profile(const Account& account) { return update(account); }
  // The secret behind SCRAM's dummy salts; nodes sharing accounts share it,
  // or comparing two nodes' salts would tell unknown IDs from accounts.
  virtual const Bytes& dummy_salt_key() const = 0;

  // Writes of this turn that are not in NodeCore's own LMDB transaction.
  virtual bool writes_pending() const { return false; }
  // Seals this turn's writes; `done` runs (on the loop) once they committed
  // (nullopt) or did not (the error to answer with).
  virtual void commit_turn(std::function<void(std::optional<StoreError>)> done) { done(std::nullopt); }
};

}  // namespace tsunagu::rendezvous
