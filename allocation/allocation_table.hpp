// The allocation table of a LAN agent, in LMDB (through storage/lmdb_store.hpp):
// extension/user ID <-> client (MAC or client-id) bindings, and leases
// client -> address, expiry, hostname, server.
//
// Ordering (every event is idempotent; a late or repeated event never
// overwrites newer knowledge). A lease is identified by family + MAC (v4) or
// family + DUID (v6; client-id or MAC when the other is missing). For an event
// e against the stored record r of the same lease:
//   grant vs live:   the later expiry wins; with an unknown expiry, the later
//                    reported_at; a known expiry for the same address replaces an
//                    unknown one reported at most 2 s later (the same grant: a hook
//                    without the lease time, then the lease file); the same expiry
//                    (and address) is a duplicate.
//   end vs live:     stale when it names another lease (another address, or
//                    another client-id when both have one: the client restarted
//                    with a new client-id); else the end wins if it ends this
//                    expiry or a later one, or was reported at or after the grant;
//                    otherwise it is stale (a late end of an earlier lease).
//   grant vs ended:  stale if reported before the end; reported in the same
//                    second as the end, from dnsmasq or ISC (they call hooks in
//                    order), the later arrival wins whatever the expiry (grant,
//                    release and grant again within one second of the hook
//                    clock); otherwise (Kea, no report time) stale unless its
//                    expiry is after the ended one (dnsmasq del then a late add).
//   end vs ended:    duplicate.
// Ending events for a lease the table never saw are stored as ended records so
// a later-arriving older grant is still refused.
//
// Expiry: expire_stale(now) marks active leases past their expiry `expired`
// and deletes ended records older than tombstone_retention; next_deadline()
// says when to call it next. Queries take `now` and return live leases only
// unless include_ended.
//
// Writes go through a Batch (one LMDB write transaction; the agent group-commits
// one per loop turn); the one-shot methods open and commit their own.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/apply_result.hpp"
#include "allocation/binding_conflict.hpp"
#include "allocation/client_ref.hpp"
#include "allocation/extension_binding.hpp"
#include "allocation/history_entry.hpp"
#include "allocation/lease_event.hpp"
#include "allocation/lease_file_snapshot.hpp"
#include "allocation/lease_record.hpp"
#include "allocation/sync_result.hpp"
#include "allocation/table_change.hpp"
#include "allocation/table_error.hpp"
#include "allocation/table_options.hpp"
#include "base/expected.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::alloc {

inline constexpr size_t kMaxExtensionLength = 64;

class AllocationTable {
 public:
  class Batch;

  // Opens (creating) the table's databases in env, which must outlive the table.
  static Expected<AllocationTable, TableError> open(storage::Environment& env, TableOptions options);

  Expected<Batch, TableError> begin_batch();

  // One-shot writes: each is a Batch of one, committed.
  Expected<ApplyResult, TableError> apply(const LeaseEvent& event, int64_t now);
  Expected<std::vector<TableChange>, TableError> bind(std::string_view extension, const ClientRef& client,
                                                      int64_t now);
  Expected<std::vector<TableChange>, TableError> unbind(std::string_view extension, int64_t now);
  Expected<std::vector<TableChange>, TableError> expire_stale(int64_t now);
  Expected<SyncResult, TableError> sync(const LeaseFileSnapshot& snapshot, int64_t now);

  // Reads (each in its own read transaction).
  Expected<std::vector<LeaseRecord>, TableError> find_by_extension(std::string_view extension, int64_t now,
                                                                   bool include_ended = false);
  Expected<std::vector<LeaseRecord>, TableError> find_by_client(const ClientRef& client, int64_t now,
                                                                bool include_ended = false);
  Expected<std::vector<LeaseRecord>, TableError> find_by_mac(std::string_view mac, int64_t now,
                                                             bool include_ended = false);
  Expected<std::optional<LeaseRecord>, TableError> find_by_address(const proto::SocketAddress& address, int64_t now,
                                                                   bool include_ended = false);
  Expected<std::vector<LeaseRecord>, TableError> list(int64_t now, bool include_ended = false);
  Expected<std::optional<ExtensionBinding>, TableError> binding(std::string_view extension);
  Expected<std::vector<ExtensionBinding>, TableError> bindings();
  // Clients whose hostname claimed a bound extension (binding_conflict.hpp),
  // by extension; an admin bind of that extension clears its conflicts.
  Expected<std::vector<BindingConflict>, TableError> conflicts();
  // The last history_depth changes of an extension, oldest first.
  Expected<std::vector<HistoryEntry>, TableError> history(std::string_view extension);
  // When expire_stale has work next (an expiry or a purge), if ever.
  Expected<std::optional<int64_t>, TableError> next_deadline();

  const TableOptions& options() const { return options_; }

  // Until release_reads(), binding() and find_by_client() / find_by_extension()
  // share one read transaction: a loop turn's lookups pay for one, not two or
  // three each. A write (begin_batch) releases it first, so a read after a
  // write always sees the write.
  Expected<void, TableError> hold_reads();
  void release_reads() { held_read_.reset(); }
  bool holding_reads() const { return held_read_.has_value(); }
  // The held reads' snapshot (storage::Transaction::snapshot_id): what was
  // read under one ID is still true under it, whoever writes the table (the
  // agent, or `tsunagu-lan-agent bind` in another process). nullopt when no
  // reads are held.
  std::optional<uint64_t> held_snapshot() const {
    return held_read_ ? std::optional<uint64_t>(held_read_->snapshot_id()) : std::nullopt;
  }

 private:
  struct Databases {
    storage::DatabaseHandle leases = 0, by_client = 0, by_address = 0, deadlines = 0, bindings = 0, bound = 0,
                            history = 0, meta = 0, conflicts = 0;
  };
  friend class Batch;
  AllocationTable(storage::Environment& env, TableOptions options, Databases dbs)
      : env_(&env), options_(std::move(options)), dbs_(dbs) {}

  // The held read transaction, or a transaction of the call's own in `own`.
  Expected<storage::Transaction*, TableError> reader(std::optional<storage::Transaction>& own);

  storage::Environment* env_;
  TableOptions options_;
  Databases dbs_;
  std::optional<storage::Transaction> held_read_;
};

// A write transaction over the table. Nothing is visible to readers, nor
// durable, until commit(); destroying an uncommitted Batch aborts it. After a
// storage error the batch is poisoned and can only be dropped.
class AllocationTable::Batch {
 public:
  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept = default;

  Expected<ApplyResult, TableError> apply(const LeaseEvent& event, int64_t now);
  // Admin binding: replaces the extension's binding and the client's previous one.
  Expected<std::vector<TableChange>, TableError> bind(std::string_view extension, const ClientRef& client,
                                                      int64_t now);
  Expected<std::vector<TableChange>, TableError> unbind(std::string_view extension, int64_t now);
  Expected<std::vector<TableChange>, TableError> expire_stale(int64_t now);
  // Reconciles with a server's lease file: each lease in it is applied under the
  // same ordering rules. A live lease of the same server that is absent from the
  // file and was last reported before the file was taken (snapshot.taken_at) is
  // ended (state removed): the server no longer has it. A lease reported after
  // the file was taken is kept (a hook told us of it since). When the snapshot
  // has bad records nothing is ended, since the lease may be on the bad line.
  Expected<SyncResult, TableError> sync(const LeaseFileSnapshot& snapshot, int64_t now);
  // The two halves of sync, for a caller that commits the leases in several
  // batches (a large file: one huge write transaction is slow) and then ends
  // the absent ones in a last batch. The ordering rules make a partly applied
  // file harmless: every lease in it is knowledge of its own.
  Expected<void, TableError> sync_leases(const LeaseFileSnapshot& snapshot, size_t first, size_t end, int64_t now,
                                         SyncResult& result);
  Expected<void, TableError> sync_absent(const LeaseFileSnapshot& snapshot, int64_t now, SyncResult& result);
  // The whole of sync for a table with no lease, binding, history or conflict
  // yet (the first sync, a rebuild after a power cut), when no lease of the
  // file reads what another wrote (each lease key, MAC, client-id, live
  // address and learned extension once): the same table as sync, written as
  // sorted appends per database. Returns false, having written nothing, when
  // the table or the file is not such a case; the caller then syncs.
  Expected<bool, TableError> bulk_load(const LeaseFileSnapshot& snapshot, int64_t now, SyncResult& result);
  Expected<void, TableError> commit();

 private:
  friend class AllocationTable;
  Batch(AllocationTable& table, storage::Transaction txn) : table_(&table), txn_(std::move(txn)) {}

  Expected<void, TableError> learn_from_hostname(const LeaseRecord& record, int64_t now,
                                                 std::vector<TableChange>& changes);
  Expected<void, TableError> record_conflict(const ExtensionBinding& current, const ClientRef& claimant,
                                             const LeaseRecord& record, int64_t now,
                                             std::vector<TableChange>& changes);
  Expected<void, TableError> clear_conflicts(std::string_view extension);
  Expected<void, TableError> set_binding(const ExtensionBinding& binding, int64_t now,
                                         std::vector<TableChange>& changes);
  // The same, given what the caller already read: the extension's binding and
  // the client's bound extension.
  Expected<void, TableError> set_binding(const ExtensionBinding& binding, const std::optional<ExtensionBinding>& old,
                                         const std::optional<std::string>& other, int64_t now,
                                         std::vector<TableChange>& changes);
  Expected<std::optional<std::string>, TableError> extension_of(const LeaseRecord& record);
  Expected<void, TableError> add_history(const TableChange& change, int64_t now);
  Expected<void, TableError> store(const LeaseRecord& record, const std::optional<LeaseRecord>& before);
  Expected<void, TableError> erase(const LeaseRecord& record);
  int64_t deadline_of(const LeaseRecord& record) const;

  AllocationTable* table_;
  storage::Transaction txn_;
  std::optional<uint64_t> next_sequence_;  // history sequence, written back on commit
  // How many history entries counted_extension_ holds in this transaction
  // (add_history is the only writer of history, so it stays true).
  std::optional<std::string> counted_extension_;
  size_t counted_entries_ = 0;
};

}  // namespace tsunagu::alloc
