// AllocationTable::Batch::bulk_load against the per-lease sync it replaces for
// an empty table: both write real LMDB files in mkdtemp directories, and every
// key and value of every database must be the same bytes.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "allocation/allocation_table.hpp"
#include "allocation/dnsmasq_lease_file_parser.hpp"
#include "allocation/field_normalisation.hpp"

using namespace tsunagu::alloc;
namespace storage = tsunagu::storage;

namespace {

constexpr int64_t T = 1795334000;

const char* const kDatabases[] = {"alloc_leases",   "alloc_by_client", "alloc_by_address",
                                  "alloc_deadlines", "alloc_bindings", "alloc_bound",
                                  "alloc_history",  "alloc_meta",      "alloc_conflicts"};

struct Table {
  std::string dir;
  std::unique_ptr<storage::Environment> env;
  std::optional<AllocationTable> table;

  explicit Table(const TableOptions& options) {
    char templ[] = "/tmp/alloc-bulk-test.XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    dir = templ;
    auto e = storage::Environment::open(dir);
    REQUIRE(e);
    env = std::move(*e);
    auto t = AllocationTable::open(*env, options);
    REQUIRE(t);
    table.emplace(std::move(*t));
  }
  ~Table() {
    table.reset();
    env.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // Every database's entries as "db key=value" lines, bytes in hex.
  std::vector<std::string> dump() {
    std::vector<std::string> lines;
    for (const char* name : kDatabases) {
      auto handle = env->open_database(name);
      REQUIRE(handle);
      auto txn = env->begin_read();
      REQUIRE(txn);
      REQUIRE(txn->scan(*handle, {}, [&](tsunagu::ByteView key, tsunagu::ByteView value) {
        lines.push_back(std::string(name) + " " + tsunagu::to_hex(key) + "=" + tsunagu::to_hex(value));
        return true;
      }));
    }
    return lines;
  }
};

TableOptions options_with(size_t history_depth, bool rule) {
  TableOptions o;
  if (rule) o.hostname_rule = *HostnameRule::parse("ext-{ext}");
  o.history_depth = history_depth;
  o.tombstone_retention = 3600;
  return o;
}

std::string hex_pair(int i) {
  const char* digits = "0123456789abcdef";
  return {digits[(i >> 4) & 15], digits[i & 15]};
}

LeaseEvent lease(int i, LeaseAction action = LeaseAction::grant) {
  LeaseEvent e;
  e.action = action;
  e.source = ServerKind::dnsmasq;
  e.address = *parse_ip_address("10.7." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1));
  e.mac = "02:00:00:00:" + hex_pair(i >> 8) + ":" + hex_pair(i);
  e.hostname = "ext-" + std::to_string(4000 + i);
  e.server = "lan0";
  e.expires = T + 600 + i;
  e.reported_at = T;
  return e;
}

// Leases of every shape the table stores differently.
LeaseFileSnapshot varied_snapshot() {
  LeaseFileSnapshot s;
  s.source = ServerKind::dnsmasq;
  s.taken_at = T;
  for (int i = 0; i < 300; ++i) {
    LeaseEvent e = lease(i);
    switch (i % 7) {
      case 0: e.hostname.clear(); break;                      // no hostname: nothing learned
      case 1: e.hostname = "printer-" + std::to_string(i); break;  // the rule does not match
      case 2: e.client_id = "01:" + e.mac.str(); break;             // MAC and client-id
      case 3: e.expires = LeaseEvent::kUnknownExpiry; break;  // lives assumed_lease_seconds
      case 4: e.expires = LeaseEvent::kInfinite; break;       // no deadline
      case 5: e.action = LeaseAction::remove; break;          // an ended lease: a tombstone
      default: break;
    }
    s.leases.push_back(e);
  }
  for (int i = 300; i < 340; ++i) {  // IPv6, identified by DUID; some without a MAC
    LeaseEvent e = lease(i);
    e.address = *parse_ip_address("fd00::" + hex_pair(i >> 8) + hex_pair(i));
    e.client_id = "00:01:00:01:" + hex_pair(i >> 8) + ":" + hex_pair(i);
    if (i % 2 == 0) e.mac.clear();
    s.leases.push_back(e);
  }
  // Listed in no order: the load sorts.
  std::swap(s.leases[3], s.leases[250]);
  std::swap(s.leases[10], s.leases[320]);
  s.records = s.leases.size();
  return s;
}

void check_changes_equal(const SyncResult& a, const SyncResult& b) {
  REQUIRE(a.changes.size() == b.changes.size());
  for (size_t i = 0; i < a.changes.size(); ++i) {
    CAPTURE(i);
    CHECK(a.changes[i].kind == b.changes[i].kind);
    CHECK(a.changes[i].extension == b.changes[i].extension);
    CHECK(a.changes[i].lease == b.changes[i].lease);
    CHECK(a.changes[i].previous_address == b.changes[i].previous_address);
    CHECK(a.changes[i].binding == b.changes[i].binding);
  }
}

// Loads the snapshot both ways; returns whether the bulk load took it.
bool load_both_ways(const TableOptions& options, const LeaseFileSnapshot& snapshot, bool list_changes = true) {
  Table bulk(options), per_lease(options);
  SyncResult bulk_result, per_lease_result;
  bulk_result.list_changes = per_lease_result.list_changes = list_changes;
  auto batch = bulk.table->begin_batch();
  REQUIRE(batch);
  auto took = batch->bulk_load(snapshot, T + 5, bulk_result);
  REQUIRE(took);
  REQUIRE(batch->commit());
  auto other = per_lease.table->begin_batch();
  REQUIRE(other);
  REQUIRE(other->sync_leases(snapshot, 0, snapshot.leases.size(), T + 5, per_lease_result));
  REQUIRE(other->sync_absent(snapshot, T + 5, per_lease_result));
  REQUIRE(other->commit());
  if (!*took) {
    CHECK(bulk.dump().empty());  // nothing written
    CHECK(bulk_result.applied == 0);
    return false;
  }
  CHECK(bulk.dump() == per_lease.dump());
  CHECK(bulk_result.applied == per_lease_result.applied);
  CHECK(bulk_result.duplicates == per_lease_result.duplicates);
  CHECK(bulk_result.stale == per_lease_result.stale);
  CHECK(bulk_result.ended_absent == per_lease_result.ended_absent);
  CHECK(bulk_result.absent_checked == per_lease_result.absent_checked);
  check_changes_equal(bulk_result, per_lease_result);
  return true;
}

}  // namespace

TEST_CASE("a bulk load into an empty table writes the same bytes as syncing lease by lease") {
  const LeaseFileSnapshot snapshot = varied_snapshot();
  for (size_t depth : {1, 2, 16}) {
    for (bool rule : {true, false}) {
      CAPTURE(depth);
      CAPTURE(rule);
      CHECK(load_both_ways(options_with(depth, rule), snapshot));
    }
  }
  CHECK(load_both_ways(options_with(16, true), snapshot, false));
}

TEST_CASE("a bulk load of a parsed dnsmasq file, with a bad line, ends nothing and matches") {
  std::string file;
  for (int i = 0; i < 50; ++i) {
    file += std::to_string(T + 900 + i) + " 02:00:00:00:00:" + hex_pair(i) + " 10.8.0." + std::to_string(i + 1) +
            (i % 3 == 0 ? " *" : " ext-" + std::to_string(5000 + i)) + " *\n";
  }
  auto clean = parse_dnsmasq_lease_file(file, T);
  REQUIRE(clean);
  CHECK(load_both_ways(options_with(16, true), *clean));
  auto with_bad_line = parse_dnsmasq_lease_file(file + "not a lease line\n", T);
  REQUIRE(with_bad_line);
  REQUIRE(with_bad_line->bad_records == 1);
  CHECK(load_both_ways(options_with(16, true), *with_bad_line));
}

TEST_CASE("a file where one lease's apply reads another's takes the per-lease path") {
  const TableOptions options = options_with(16, true);
  auto base = [] {
    LeaseFileSnapshot s;
    s.source = ServerKind::dnsmasq;
    s.taken_at = T;
    for (int i = 0; i < 5; ++i) s.leases.push_back(lease(i));
    return s;
  };
  LeaseFileSnapshot same_lease = base();
  same_lease.leases.push_back(lease(2));
  same_lease.leases.back().expires += 100;
  CHECK(!load_both_ways(options, same_lease));

  LeaseFileSnapshot same_mac = base();  // its v6 lease: another lease key, the same client
  same_mac.leases.push_back(lease(3));
  same_mac.leases.back().address = *parse_ip_address("fd00::3");
  same_mac.leases.back().client_id = "00:01:00:01:00:03";
  same_mac.leases.back().hostname.clear();
  CHECK(!load_both_ways(options, same_mac));

  LeaseFileSnapshot same_address = base();
  same_address.leases.push_back(lease(9));
  same_address.leases.back().address = same_address.leases[1].address;
  same_address.leases.back().hostname.clear();
  CHECK(!load_both_ways(options, same_address));

  LeaseFileSnapshot same_extension = base();
  same_extension.leases.push_back(lease(9));
  same_extension.leases.back().hostname = same_extension.leases[4].hostname;
  CHECK(!load_both_ways(options, same_extension));

  // An ended lease's address may repeat a live one's: only live leases own one.
  LeaseFileSnapshot ended_at_live_address = base();
  ended_at_live_address.leases.push_back(lease(9, LeaseAction::remove));
  ended_at_live_address.leases.back().address = ended_at_live_address.leases[0].address;
  CHECK(load_both_ways(options, ended_at_live_address));
}

TEST_CASE("a table that holds anything already is synced lease by lease, and sync gives the same table") {
  const TableOptions options = options_with(16, true);
  Table admin_bound(options), reference(options);
  const LeaseFileSnapshot snapshot = varied_snapshot();
  for (Table* t : {&admin_bound, &reference})
    REQUIRE(t->table->bind("9999", *ClientRef::mac("02:00:00:00:00:01"), T));
  auto batch = admin_bound.table->begin_batch();
  REQUIRE(batch);
  SyncResult result;
  auto took = batch->bulk_load(snapshot, T + 5, result);
  REQUIRE(took);
  CHECK(!*took);
  REQUIRE(batch->commit());
  auto synced = admin_bound.table->sync(snapshot, T + 5);
  REQUIRE(synced);
  auto other = reference.table->begin_batch();
  REQUIRE(other);
  SyncResult per_lease;
  REQUIRE(other->sync_leases(snapshot, 0, snapshot.leases.size(), T + 5, per_lease));
  REQUIRE(other->sync_absent(snapshot, T + 5, per_lease));
  REQUIRE(other->commit());
  CHECK(admin_bound.dump() == reference.dump());
  REQUIRE(admin_bound.table->binding("9999")->has_value());
  CHECK(admin_bound.table->binding("9999")->value().origin == BindingOrigin::admin);
}

TEST_CASE("a bulk-loaded table then takes hook events and a re-sync like any other") {
  const TableOptions options = options_with(16, true);
  Table bulk(options), per_lease(options);
  const LeaseFileSnapshot snapshot = varied_snapshot();
  auto synced = bulk.table->sync(snapshot, T + 5);  // the one-shot sync tries the bulk load first
  REQUIRE(synced);
  auto batch = per_lease.table->begin_batch();
  REQUIRE(batch);
  SyncResult result;
  REQUIRE(batch->sync_leases(snapshot, 0, snapshot.leases.size(), T + 5, result));
  REQUIRE(batch->sync_absent(snapshot, T + 5, result));
  REQUIRE(batch->commit());
  for (Table* t : {&bulk, &per_lease}) {
    LeaseEvent renewal = lease(8);
    renewal.expires += 1000;
    REQUIRE(t->table->apply(renewal, T + 6));
    LeaseEvent moved = lease(9);
    moved.expires += 1000;
    moved.address = *parse_ip_address("10.9.9.9");
    REQUIRE(t->table->apply(moved, T + 6));
    REQUIRE(t->table->expire_stale(T + 700));
    LeaseFileSnapshot smaller = snapshot;
    smaller.leases.resize(100);
    smaller.taken_at = T + 800;
    REQUIRE(t->table->sync(smaller, T + 801));
  }
  CHECK(bulk.dump() == per_lease.dump());
  CHECK(bulk.table->find_by_extension("4009", T + 6)->size() == 1);
}
