// The one place that talks to LMDB: RAII environment and transactions, and the
// map from MDB_* codes to StoreError. After any failed call a transaction is
// poisoned (LMDB's rule) and can only be aborted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"

struct MDB_env;
struct MDB_txn;

namespace tsunagu::storage {

enum class StoreErrc {
  not_found,     // the environment directory does not exist
  map_full,      // the map size in the config is too small: raise it
  readers_full,
  disk_full,
  io_error,
  corrupted,     // MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_VERSION_MISMATCH, MDB_INVALID
  busy,          // another process holds an exclusive lock
  poisoned,      // a previous call on this transaction failed
  value_too_large,
  other,
};
inline constexpr size_t store_errc_count = static_cast<size_t>(StoreErrc::other) + 1;

struct StoreError {
  StoreErrc code = StoreErrc::other;
  int system_code = 0;  // the MDB_* or errno value
  std::string detail;
};

std::string_view to_string(StoreErrc code);
StoreError error_from_mdb(int rc, std::string_view during);

using DatabaseHandle = unsigned int;  // MDB_dbi

// A fake, and the only one in storage/: it makes chosen writes or commits of
// an environment fail as LMDB would, for faults a test cannot cause on a real
// disk at a chosen moment (the Nth commit failing, map full, disk full at one
// write). SQLite's test VFS is the model. Compiled in always and inert until
// armed; no production path arms it. A failure it injects poisons the
// transaction exactly like a real one (a failed commit writes nothing).
class FaultPlan {
 public:
  // The nth commit of a write transaction from now (1: the next) fails with
  // `code` (an MDB_* or errno value such as EIO); once.
  void fail_commit(unsigned nth, int code);
  // Every write (put, insert, erase) and every commit fails with `code`
  // (ENOSPC, MDB_MAP_FULL) until clear(): storage that stays full.
  void fail_writes(int code) { failing_writes_ = code; }
  void clear() {
    commits_until_failure_ = 0;
    failing_writes_ = 0;
  }
  bool armed() const { return commits_until_failure_ != 0 || failing_writes_ != 0; }
  uint64_t injected() const { return injected_; }

  // For Transaction: the code to fail this call with, 0 to go ahead.
  int before_write();
  int before_commit();

 private:
  unsigned commits_until_failure_ = 0;
  int commit_code_ = 0;
  int failing_writes_ = 0;
  uint64_t injected_ = 0;
};

class Environment;

class Transaction {
 public:
  Transaction() = default;
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&& other) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // The view points into the map and is valid until the transaction ends or writes.
  Expected<std::optional<ByteView>, StoreError> get(DatabaseHandle db, ByteView key);
  Expected<void, StoreError> put(DatabaseHandle db, ByteView key, ByteView value);
  // Fails with nothing written when the key exists; returns false then.
  Expected<bool, StoreError> insert(DatabaseHandle db, ByteView key, ByteView value);
  // Writes at the end of the database (MDB_APPEND: no B-tree descent, pages
  // filled full): the key must sort after every key already there, else the
  // call fails (MDB_KEYEXIST) and poisons the transaction. For bulk loads of
  // keys sorted in memory.
  Expected<void, StoreError> append(DatabaseHandle db, ByteView key, ByteView value);
  // The same for `count` entries through one cursor, which stays on the last
  // page (no descent from the root per entry); entry(i) gives the i-th.
  Expected<void, StoreError> append_all(DatabaseHandle db, size_t count,
                                        const std::function<std::pair<ByteView, ByteView>(size_t)>& entry);
  // Returns whether the key was there.
  Expected<bool, StoreError> erase(DatabaseHandle db, ByteView key);
  // Visits keys >= from in order until visit returns false.
  Expected<void, StoreError> scan(DatabaseHandle db, ByteView from,
                                  const std::function<bool(ByteView key, ByteView value)>& visit);
  // Visits, in order, the keys that begin with `prefix`, starting at `from`
  // (empty: the first such key), until one does not or visit returns false.
  Expected<void, StoreError> scan_prefix(DatabaseHandle db, ByteView prefix, ByteView from,
                                         const std::function<bool(ByteView key, ByteView value)>& visit);
  Expected<uint64_t, StoreError> count(DatabaseHandle db);

  Expected<void, StoreError> commit();
  void abort();
  bool active() const { return txn_ != nullptr; }
  bool poisoned() const { return poisoned_; }
  // A read transaction's snapshot: the ID of the last write transaction
  // committed before it began (by any process). Two read transactions with the
  // same ID see the same data. 0 when not active.
  uint64_t snapshot_id() const;

 private:
  friend class Environment;
  Transaction(MDB_txn* txn, Environment* env) : txn_(txn), env_(env) {}
  StoreError poison(int rc, std::string_view during);
  int injected_write_fault() const;
  MDB_txn* txn_ = nullptr;
  Environment* env_ = nullptr;  // write transactions only
  bool poisoned_ = false;
};

class Environment {
 public:
  struct Options {
    uint64_t map_size = uint64_t{1} << 30;
    unsigned max_databases = 16;
    unsigned max_readers = 126;
    // false: commits are written to the page cache only (MDB_NOSYNC |
    // MDB_NOMETASYNC), safe against a crash of the process but not of the
    // machine, until flush(). Only for data the caller can rebuild from
    // elsewhere (the LAN agent's allocation table, docs/security.md).
    bool flush_on_commit = true;
  };

  // Opens (creating if needed) an environment in directory `dir`, which must exist.
  static Expected<std::unique_ptr<Environment>, StoreError> open(const std::string& dir, Options options);
  static Expected<std::unique_ptr<Environment>, StoreError> open(const std::string& dir) {
    return open(dir, Options{});
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment();

  // Opens or creates a named database; done once at start-up.
  Expected<DatabaseHandle, StoreError> open_database(std::string_view name);
  Expected<Transaction, StoreError> begin_read();
  Expected<Transaction, StoreError> begin_write();

  // How much of the map the data occupies (pages up to the last one used),
  // for `doctor` and the operator: LMDB refuses writes once the map is full.
  struct MapUsage {
    uint64_t used_bytes = 0;
    uint64_t map_bytes = 0;
  };
  Expected<MapUsage, StoreError> usage();

  // Writes every committed page to the disk (mdb_env_sync, forced): what
  // commits do by themselves unless opened with flush_on_commit = false. Safe
  // to call from another thread while this one commits.
  Expected<void, StoreError> flush();

  // Tests only (see FaultPlan); applies to write transactions begun after.
  FaultPlan& faults() { return faults_; }

 private:
  friend class Transaction;
  Environment(MDB_env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  // A failed commit's error; EIO becomes disk_full when the file system is full.
  StoreError commit_error(int rc);
  MDB_env* env_;
  std::string dir_;
  FaultPlan faults_;
};

}  // namespace tsunagu::storage
