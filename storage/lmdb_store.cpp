#include "storage/lmdb_store.hpp"

#include <lmdb.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace tsunagu::storage {
namespace {

MDB_val to_val(ByteView bytes) {
  return MDB_val{bytes.size(), const_cast<std::byte*>(bytes.data())};
}
ByteView from_val(const MDB_val& v) {
  return {static_cast<const std::byte*>(v.mv_data), v.mv_size};
}

}  // namespace

std::string_view to_string(StoreErrc code) {
  switch (code) {
    case StoreErrc::not_found: return "not found";
    case StoreErrc::map_full: return "database map is full (raise map_size)";
    case StoreErrc::readers_full: return "too many readers";
    case StoreErrc::disk_full: return "disk full";
    case StoreErrc::io_error: return "I/O error";
    case StoreErrc::corrupted: return "database corrupted or wrong version";
    case StoreErrc::busy: return "database busy";
    case StoreErrc::poisoned: return "transaction already failed";
    case StoreErrc::value_too_large: return "key or value too large";
    case StoreErrc::other: return "storage error";
  }
  return "storage error";
}

StoreError error_from_mdb(int rc, std::string_view during) {
  StoreErrc code = StoreErrc::other;
  switch (rc) {
    case MDB_MAP_FULL: code = StoreErrc::map_full; break;
    case MDB_READERS_FULL: code = StoreErrc::readers_full; break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: code = StoreErrc::corrupted; break;
    case MDB_BAD_VALSIZE: code = StoreErrc::value_too_large; break;
    case ENOSPC: code = StoreErrc::disk_full; break;
    case EIO: code = StoreErrc::io_error; break;
    case ENOENT: code = StoreErrc::not_found; break;
    case EAGAIN:
    case EBUSY: code = StoreErrc::busy; break;
    default: break;
  }
  std::string detail(during);
  detail.append(": ").append(mdb_strerror(rc));
  return StoreError{code, rc, std::move(detail)};
}

void FaultPlan::fail_commit(unsigned nth, int code) {
  commits_until_failure_ = nth;
  commit_code_ = code;
}

int FaultPlan::before_write() {
  if (failing_writes_ == 0) return 0;
  ++injected_;
  return failing_writes_;
}

int FaultPlan::before_commit() {
  if (failing_writes_ != 0) {
    ++injected_;
    return failing_writes_;
  }
  if (commits_until_failure_ == 0 || --commits_until_failure_ != 0) return 0;
  ++injected_;
  return commit_code_;
}

Transaction::Transaction(Transaction&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)),
      env_(std::exchange(other.env_, nullptr)),
      poisoned_(other.poisoned_) {}

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    abort();
    txn_ = std::exchange(other.txn_, nullptr);
    env_ = std::exchange(other.env_, nullptr);
    poisoned_ = other.poisoned_;
  }
  return *this;
}

Transaction::~Transaction() { abort(); }

void Transaction::abort() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

StoreError Transaction::poison(int rc, std::string_view during) {
  poisoned_ = true;
  return error_from_mdb(rc, during);
}

int Transaction::injected_write_fault() const { return env_ != nullptr ? env_->faults_.before_write() : 0; }

static StoreError poisoned_error() { return StoreError{StoreErrc::poisoned, 0, "transaction already failed"}; }

Expected<std::optional<ByteView>, StoreError> Transaction::get(DatabaseHandle db, ByteView key) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_val k = to_val(key), v{};
  int rc = mdb_get(txn_, db, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<ByteView>{};
  if (rc != 0) return Unexpected(poison(rc, "mdb_get"));
  return std::optional<ByteView>{from_val(v)};
}

Expected<void, StoreError> Transaction::put(DatabaseHandle db, ByteView key, ByteView value) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_val k = to_val(key), v = to_val(value);
  int rc = injected_write_fault();
  if (rc == 0) rc = mdb_put(txn_, db, &k, &v, 0);
  if (rc != 0) return Unexpected(poison(rc, "mdb_put"));
  return {};
}

Expected<void, StoreError> Transaction::append(DatabaseHandle db, ByteView key, ByteView value) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_val k = to_val(key), v = to_val(value);
  int rc = injected_write_fault();
  if (rc == 0) rc = mdb_put(txn_, db, &k, &v, MDB_APPEND);
  if (rc != 0) return Unexpected(poison(rc, "mdb_put append"));
  return {};
}

Expected<void, StoreError> Transaction::append_all(
    DatabaseHandle db, size_t count, const std::function<std::pair<ByteView, ByteView>(size_t)>& entry) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc != 0) return Unexpected(poison(rc, "mdb_cursor_open"));
  for (size_t i = 0; i < count && rc == 0; ++i) {
    auto [key, value] = entry(i);
    MDB_val k = to_val(key), v = to_val(value);
    rc = injected_write_fault();
    if (rc == 0) rc = mdb_cursor_put(cursor, &k, &v, MDB_APPEND);
  }
  mdb_cursor_close(cursor);
  if (rc != 0) return Unexpected(poison(rc, "mdb_cursor_put append"));
  return {};
}

Expected<bool, StoreError> Transaction::insert(DatabaseHandle db, ByteView key, ByteView value) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_val k = to_val(key), v = to_val(value);
  int rc = injected_write_fault();
  if (rc == 0) rc = mdb_put(txn_, db, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  if (rc != 0) return Unexpected(poison(rc, "mdb_put"));
  return true;
}

Expected<bool, StoreError> Transaction::erase(DatabaseHandle db, ByteView key) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_val k = to_val(key);
  int rc = injected_write_fault();
  if (rc == 0) rc = mdb_del(txn_, db, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return Unexpected(poison(rc, "mdb_del"));
  return true;
}

Expected<void, StoreError> Transaction::scan(DatabaseHandle db, ByteView from,
                                             const std::function<bool(ByteView, ByteView)>& visit) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc != 0) return Unexpected(poison(rc, "mdb_cursor_open"));
  MDB_val k = to_val(from), v{};
  rc = from.empty() ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST) : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    if (!visit(from_val(k), from_val(v))) break;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) return Unexpected(poison(rc, "mdb_cursor_get"));
  return {};
}

Expected<void, StoreError> Transaction::scan_prefix(DatabaseHandle db, ByteView prefix, ByteView from,
                                                    const std::function<bool(ByteView, ByteView)>& visit) {
  ByteView start = from.empty() ? prefix : from;
  return scan(db, start, [&](ByteView key, ByteView value) {
    if (key.size() < prefix.size() || !std::equal(prefix.begin(), prefix.end(), key.begin())) return false;
    return visit(key, value);
  });
}

Expected<uint64_t, StoreError> Transaction::count(DatabaseHandle db) {
  if (poisoned_ || txn_ == nullptr) return Unexpected(poisoned_error());
  MDB_stat stat{};
  int rc = mdb_stat(txn_, db, &stat);
  if (rc != 0) return Unexpected(poison(rc, "mdb_stat"));
  return static_cast<uint64_t>(stat.ms_entries);
}

uint64_t Transaction::snapshot_id() const { return txn_ != nullptr ? static_cast<uint64_t>(mdb_txn_id(txn_)) : 0; }

Expected<void, StoreError> Transaction::commit() {
  if (txn_ == nullptr) return Unexpected(poisoned_error());
  if (poisoned_) {
    abort();
    return Unexpected(poisoned_error());
  }
  if (int injected = env_ != nullptr ? env_->faults_.before_commit() : 0; injected != 0) {
    abort();  // as a failed mdb_txn_commit: nothing written, the txn freed
    return Unexpected(env_->commit_error(injected));
  }
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));  // frees the txn whatever rc is
  if (rc != 0) return Unexpected(env_ != nullptr ? env_->commit_error(rc) : error_from_mdb(rc, "mdb_txn_commit"));
  return {};
}

Expected<std::unique_ptr<Environment>, StoreError> Environment::open(const std::string& dir, Options options) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_create"));
  auto fail = [&](int code, std::string_view during) {
    mdb_env_close(env);
    return Unexpected(error_from_mdb(code, during));
  };
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return fail(rc, "mdb_env_set_mapsize");
  if ((rc = mdb_env_set_maxdbs(env, options.max_databases)) != 0) return fail(rc, "mdb_env_set_maxdbs");
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != 0) return fail(rc, "mdb_env_set_maxreaders");
  // Durable by default: every commit is fsynced. MDB_NOTLS because the daemons may
  // read from the libuv thread pool.
  unsigned flags = MDB_NOTLS;
  if (!options.flush_on_commit) flags |= MDB_NOSYNC | MDB_NOMETASYNC;
  if ((rc = mdb_env_open(env, dir.c_str(), flags, 0600)) != 0) {
    std::string during = "opening database in " + dir;
    return fail(rc, during);
  }
  return std::unique_ptr<Environment>(new Environment(env, dir));
}

StoreError Environment::commit_error(int rc) {
  StoreError error = error_from_mdb(rc, "mdb_txn_commit");
  // LMDB reports a short write of its pages as EIO ("which error code?" in
  // mdb_page_flush), and a disk that fills in mid-commit gives exactly that.
  // When the file system holding the environment is full, that is the cause.
  struct statvfs fs{};
  constexpr uint64_t nearly_full = uint64_t{1} << 20;
  if (rc == EIO && statvfs(dir_.c_str(), &fs) == 0 && uint64_t{fs.f_bavail} * fs.f_frsize < nearly_full) {
    error.code = StoreErrc::disk_full;
    error.detail += " (the file system holding " + dir_ + " is full)";
  }
  return error;
}

Environment::~Environment() { mdb_env_close(env_); }

Expected<DatabaseHandle, StoreError> Environment::open_database(std::string_view name) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return Unexpected(error_from_mdb(rc, "mdb_txn_begin"));
  MDB_dbi dbi = 0;
  std::string name_z(name);
  rc = mdb_dbi_open(txn, name_z.c_str(), MDB_CREATE, &dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return Unexpected(error_from_mdb(rc, "mdb_dbi_open " + name_z));
  }
  if (int injected = faults_.before_commit(); injected != 0) {
    mdb_txn_abort(txn);
    return Unexpected(commit_error(injected));
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return Unexpected(commit_error(rc));
  return DatabaseHandle{dbi};
}

Expected<Transaction, StoreError> Environment::begin_read() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return Unexpected(error_from_mdb(rc, "mdb_txn_begin(read)"));
  return Transaction(txn, nullptr);
}

Expected<void, StoreError> Environment::flush() {
  if (int rc = mdb_env_sync(env_, 1); rc != 0) return Unexpected(commit_error(rc));
  return {};
}

Expected<Environment::MapUsage, StoreError> Environment::usage() {
  MDB_envinfo info{};
  MDB_stat stat{};
  if (int rc = mdb_env_info(env_, &info); rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_info"));
  if (int rc = mdb_env_stat(env_, &stat); rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_stat"));
  return MapUsage{(uint64_t{info.me_last_pgno} + 1) * stat.ms_psize, info.me_mapsize};
}

Expected<Transaction, StoreError> Environment::begin_write() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return Unexpected(error_from_mdb(rc, "mdb_txn_begin(write)"));
  return Transaction(txn, this);
}

}  // namespace tsunagu::storage
