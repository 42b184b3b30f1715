// AllocationTable semantics on real LMDB files in a mkdtemp directory.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdio>

#include <filesystem>
#include <memory>
#include <string>

#include "allocation/allocation_table.hpp"
#include "allocation/dnsmasq_hook_parser.hpp"
#include "allocation/dnsmasq_lease_file_parser.hpp"
#include "allocation/field_normalisation.hpp"
#include "allocation/kea_hook_parser.hpp"
#include "allocation/lease_event_codec.hpp"
#include "allocation/spool_reader.hpp"
#include "captured_input.hpp"

using namespace tsunagu::alloc;
using tsunagu::alloc::test::CapturedCall;
using tsunagu::alloc::test::captured_calls;
namespace storage = tsunagu::storage;

namespace {

constexpr int64_t T = 1795334000;
constexpr char kMac[] = "02:0a:0b:0c:0d:0e";

// A fresh LMDB environment in a temporary directory, removed afterwards.
struct TempTable {
  std::string dir;
  std::unique_ptr<storage::Environment> env;
  std::optional<AllocationTable> table;
  TableOptions options;

  explicit TempTable(TableOptions opts = default_options()) : options(std::move(opts)) {
    char templ[] = "/tmp/alloc-test.XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    dir = templ;
    open();
  }
  ~TempTable() {
    table.reset();
    env.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  void open() {
    auto e = storage::Environment::open(dir);
    REQUIRE(e);
    env = std::move(*e);
    auto t = AllocationTable::open(*env, options);
    REQUIRE(t);
    table.emplace(std::move(*t));
  }
  void reopen() {
    table.reset();
    env.reset();
    open();
  }
  AllocationTable& operator*() { return *table; }
  AllocationTable* operator->() { return &*table; }

  static TableOptions default_options() {
    TableOptions o;
    o.hostname_rule = *HostnameRule::parse("ext-{ext}");
    o.history_depth = 4;
    o.tombstone_retention = 3600;
    return o;
  }
};

LeaseEvent grant(const char* ip, int64_t expires, int64_t reported_at, const char* host = "") {
  LeaseEvent e;
  e.action = LeaseAction::grant;
  e.source = ServerKind::dnsmasq;
  e.address = *parse_ip_address(ip);
  e.mac = kMac;
  e.hostname = host;
  e.expires = expires;
  e.reported_at = reported_at;
  return e;
}

LeaseEvent ended(const char* ip, int64_t expires, int64_t reported_at, LeaseAction action = LeaseAction::remove) {
  LeaseEvent e = grant(ip, expires, reported_at);
  e.action = action;
  return e;
}

tsunagu::proto::SocketAddress addr(const char* ip) { return *parse_ip_address(ip); }

}  // namespace

TEST_CASE("a grant is found by extension, MAC and address while live") {
  TempTable t;
  REQUIRE((*t).bind("4106", *ClientRef::mac(kMac), T));
  auto r = t->apply(grant("10.99.0.68", T + 120, T), T);
  REQUIRE(r);
  CHECK(r->outcome == ApplyOutcome::applied);
  REQUIRE(r->changes.size() == 1);
  CHECK(r->changes[0].kind == ChangeKind::lease_granted);
  CHECK(r->changes[0].extension == "4106");
  auto by_ext = t->find_by_extension("4106", T + 1);
  REQUIRE(by_ext);
  REQUIRE(by_ext->size() == 1);
  CHECK(ip_to_string((*by_ext)[0].address) == "10.99.0.68");
  CHECK(t->find_by_mac("02:0A:0B:0C:0D:0E", T + 1)->size() == 1);
  CHECK(t->find_by_address(addr("10.99.0.68"), T + 1)->has_value());
  // Past its expiry it is not live any more, even before expire_stale runs.
  CHECK(t->find_by_extension("4106", T + 120)->empty());
  CHECK(t->find_by_extension("4106", T + 120, true)->size() == 1);
  CHECK(t->find_by_extension("9999", T)->empty());
}

TEST_CASE("an older event after a newer one changes nothing") {
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.68", T + 240, T + 120), T + 120));
  auto late = t->apply(grant("10.99.0.77", T + 120, T), T + 121);
  REQUIRE(late);
  CHECK(late->outcome == ApplyOutcome::stale);
  CHECK(late->changes.empty());
  auto rec = t->find_by_mac(kMac, T + 130);
  REQUIRE(rec->size() == 1);
  CHECK(ip_to_string((*rec)[0].address) == "10.99.0.68");
  CHECK((*rec)[0].expires == T + 240);
  // A late end of the earlier lease does not end the newer one.
  auto late_del = t->apply(ended("10.99.0.77", T + 120, T + 60), T + 122);
  CHECK(late_del->outcome == ApplyOutcome::stale);
  CHECK(t->find_by_mac(kMac, T + 130)->size() == 1);
}

TEST_CASE("the same event twice is idempotent, as dnsmasq's repeated old is") {
  TempTable t;
  LeaseEvent e = grant("10.99.0.68", T + 120, T, "ext-4106");
  REQUIRE(t->apply(e, T));
  auto again = t->apply(e, T + 5);
  REQUIRE(again);
  CHECK(again->outcome == ApplyOutcome::duplicate);
  CHECK(again->changes.empty());
  LeaseEvent old = e;
  old.action = LeaseAction::renew;
  old.reported_at = T + 30;  // SIGHUP: same lease, later call
  CHECK(t->apply(old, T + 30)->outcome == ApplyOutcome::duplicate);
  CHECK(t->history("4106")->size() == 2);  // learned binding + grant, nothing for the repeats
}

TEST_CASE("del then a late add with an older or equal expiry stays deleted") {
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.68", T + 120, T), T));
  auto del = t->apply(ended("10.99.0.68", T + 120, T + 10), T + 10);
  REQUIRE(del);
  REQUIRE(del->changes.size() == 1);
  CHECK(del->changes[0].kind == ChangeKind::lease_ended);
  CHECK(t->apply(grant("10.99.0.68", T + 120, T), T + 11)->outcome == ApplyOutcome::stale);
  CHECK(t->apply(grant("10.99.0.68", T + 100, T - 20), T + 11)->outcome == ApplyOutcome::stale);
  CHECK(t->find_by_mac(kMac, T + 12)->empty());
  CHECK(!t->find_by_address(addr("10.99.0.68"), T + 12)->has_value());
  // A real new grant after the delete is live again.
  auto again = t->apply(grant("10.99.0.68", T + 140, T + 20), T + 20);
  CHECK(again->changes.at(0).kind == ChangeKind::lease_granted);
}

TEST_CASE("grant, release and grant again within one hook second: the last grant is live") {
  // CI saw this with udhcpc -R: dnsmasq granted, released and granted the same
  // address inside one second, so the new grant repeated the ended expiry.
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.99", T + 3600, T), T));
  REQUIRE(t->apply(ended("10.99.0.99", T + 3600, T, LeaseAction::release), T));
  auto again = t->apply(grant("10.99.0.99", T + 3600, T), T);
  REQUIRE(again);
  CHECK(again->outcome == ApplyOutcome::applied);
  REQUIRE(again->changes.size() == 1);
  CHECK(again->changes[0].kind == ChangeKind::lease_granted);
  CHECK(t->find_by_mac(kMac, T)->size() == 1);
}

TEST_CASE("an end for a lease never seen is remembered, so the late grant is refused") {
  TempTable t;
  auto del = t->apply(ended("10.99.0.68", T + 120, T + 10, LeaseAction::release), T + 10);
  REQUIRE(del);
  CHECK(del->outcome == ApplyOutcome::applied);
  CHECK(del->changes.empty());
  CHECK(t->apply(grant("10.99.0.68", T + 120, T), T + 11)->outcome == ApplyOutcome::stale);
}

TEST_CASE("Kea calls that overlap out of order are ordered by CLTT") {
  TempTable t;
  auto release = parse_kea_hook(CapturedCall("captured/kea4/calls/006-lease4_release").call(0));
  auto committed = parse_kea_hook(CapturedCall("captured/kea4/calls/005-leases4_committed").call(0));
  auto first = parse_kea_hook(CapturedCall("captured/kea4/calls/001-leases4_committed").call(0));
  REQUIRE(release);
  REQUIRE(committed);
  REQUIRE(first);
  REQUIRE(t->apply(release->at(0), T));
  CHECK(t->apply(committed->at(0), T)->outcome == ApplyOutcome::stale);
  CHECK(t->apply(first->at(0), T)->outcome == ApplyOutcome::stale);
  CHECK(t->find_by_mac(kMac, 1795334108)->empty());
}

TEST_CASE("expiry: expire_stale ends leases past their expiry and purges old ended records") {
  TempTable t;
  REQUIRE(t->bind("4106", *ClientRef::mac(kMac), T));
  REQUIRE(t->apply(grant("10.99.0.68", T + 120, T), T));
  CHECK(*t->next_deadline() == std::optional<int64_t>(T + 120));
  CHECK(t->expire_stale(T + 119)->empty());
  auto expired = t->expire_stale(T + 120);
  REQUIRE(expired);
  REQUIRE(expired->size() == 1);
  CHECK((*expired)[0].kind == ChangeKind::lease_expired);
  CHECK((*expired)[0].extension == "4106");
  CHECK((*expired)[0].lease->state == LeaseState::expired);
  CHECK(t->find_by_extension("4106", T + 120, true)->size() == 1);
  CHECK(*t->next_deadline() == std::optional<int64_t>(T + 120 + 3600));
  auto purged = t->expire_stale(T + 120 + 3600);
  REQUIRE(purged->size() == 1);
  CHECK((*purged)[0].kind == ChangeKind::lease_purged);
  CHECK(t->list(T, true)->empty());
  CHECK(!t->next_deadline()->has_value());
}

TEST_CASE("renumbering: a new address for the same MAC moves find_by_address") {
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.68", T + 120, T), T));
  auto moved = t->apply(grant("10.99.0.70", T + 300, T + 180), T + 180);
  REQUIRE(moved);
  REQUIRE(moved->changes.size() == 1);
  CHECK(moved->changes[0].kind == ChangeKind::lease_moved);
  CHECK(ip_to_string(*moved->changes[0].previous_address) == "10.99.0.68");
  CHECK(!t->find_by_address(addr("10.99.0.68"), T + 181, true)->has_value());
  auto now_at = t->find_by_address(addr("10.99.0.70"), T + 181);
  REQUIRE(now_at->has_value());
  CHECK((*now_at)->mac == kMac);
}

TEST_CASE("the hostname rule binds the extension, but never over an admin binding") {
  TempTable t;
  auto r = t->apply(grant("10.99.0.68", T + 120, T, "ext-4106"), T);
  REQUIRE(r);
  REQUIRE(r->changes.size() == 2);
  CHECK(r->changes[0].kind == ChangeKind::lease_granted);
  CHECK(r->changes[0].extension == "4106");
  CHECK(r->changes[1].kind == ChangeKind::binding_learned);
  auto b = t->binding("4106");
  REQUIRE(b->has_value());
  CHECK((*b)->origin == BindingOrigin::hostname_rule);
  CHECK((*b)->client.value == kMac);

  // An admin binds 4107 to another phone; a client calling itself ext-4107 does not take it.
  REQUIRE(t->bind("4107", *ClientRef::mac("02:00:00:00:00:07"), T));
  LeaseEvent other = grant("10.99.0.69", T + 120, T, "ext-4107");
  other.mac = "02:00:00:00:00:99";
  REQUIRE(t->apply(other, T));
  CHECK((*t->binding("4107"))->client.value == "02:00:00:00:00:07");
  // The admin can move 4106 (learned) to a client of their choice; one client, one extension.
  auto moved = t->bind("4107", *ClientRef::mac(kMac), T + 1);
  REQUIRE(moved);
  CHECK(!t->binding("4106")->has_value());
  CHECK(t->find_by_extension("4107", T + 2)->size() == 1);
  CHECK(t->unbind("4107", T + 3));
  CHECK(t->unbind("4107", T + 3).error().code == TableErrc::not_found);
  CHECK(t->bind("", *ClientRef::mac(kMac), T).error().code == TableErrc::invalid_argument);
}

TEST_CASE("bulk sync reconciles: file leases update the table, absent ones of that server end") {
  TempTable t;
  // Known from hooks: A (still in the file, renewed there), B (gone from the file),
  // C (reported by a hook after the file was taken), D (another server's).
  LeaseEvent a = grant("10.99.0.10", T + 100, T), b = grant("10.99.0.11", T + 100, T),
             c = grant("10.99.0.12", T + 400, T + 300), d = grant("10.99.0.13", T + 100, T);
  b.mac = "02:00:00:00:00:0b";
  c.mac = "02:00:00:00:00:0c";
  d.mac = "02:00:00:00:00:0d";
  d.source = ServerKind::kea;
  for (const auto& e : {a, b, c, d}) REQUIRE(t->apply(e, T));
  const std::string file = std::to_string(T + 200) + " 02:0a:0b:0c:0d:0e 10.99.0.10 ext-4106 *\n" +
                           std::to_string(T + 200) + " 02:00:00:00:00:0e 10.99.0.14 * 01:02:00:00:00:00:0e\n";
  auto snapshot = parse_dnsmasq_lease_file(file, T + 100);
  REQUIRE(snapshot);
  auto result = t->sync(*snapshot, T + 101);
  REQUIRE(result);
  CHECK(result->applied == 2);
  CHECK(result->absent_checked);
  CHECK(result->ended_absent == 1);
  CHECK(t->find_by_mac(kMac, T + 101)->at(0).expires == T + 200);
  CHECK(t->find_by_mac("02:00:00:00:00:0b", T + 101)->empty());
  CHECK(t->find_by_mac("02:00:00:00:00:0c", T + 101)->size() == 1);
  CHECK(t->find_by_mac("02:00:00:00:00:0d", T + 99)->size() == 1);
  CHECK(t->find_by_address(addr("10.99.0.14"), T + 101)->has_value());
  CHECK(t->binding("4106")->has_value());
  // Syncing the same file again changes nothing.
  auto again = t->sync(*snapshot, T + 102);
  CHECK(again->duplicates == 2);
  CHECK(again->changes.empty());
  // A file with a bad line ends nothing.
  auto bad = parse_dnsmasq_lease_file("garbage\n", T + 500);
  auto partial = t->sync(*bad, T + 102);
  CHECK(!partial->absent_checked);
  CHECK(t->find_by_mac(kMac, T + 103)->size() == 1);
}

TEST_CASE("bulk sync finds the absent leases by a sorted merge, whatever order the file lists them in") {
  TempTable t;
  // Nine leases known from hooks, MACs ...:01 to ...:09; the file lists four
  // of them out of order, and one new lease whose key sorts before them all.
  for (int i = 1; i <= 9; ++i) {
    LeaseEvent e = grant(("10.99.1." + std::to_string(i)).c_str(), T + 100, T);
    e.mac = "02:00:00:00:00:0" + std::to_string(i);
    REQUIRE(t->apply(e, T));
  }
  std::string file;
  for (int i : {8, 2, 5, 9})
    file += std::to_string(T + 200) + " 02:00:00:00:00:0" + std::to_string(i) + " 10.99.1." + std::to_string(i) +
            " * *\n";
  file += std::to_string(T + 200) + " 02:00:00:00:00:00 10.99.1.100 * *\n";
  auto snapshot = parse_dnsmasq_lease_file(file, T + 100);
  REQUIRE(snapshot);
  auto result = t->sync(*snapshot, T + 101);
  REQUIRE(result);
  CHECK(result->applied == 5);
  CHECK(result->ended_absent == 5);
  for (int i = 0; i <= 9; ++i) {
    bool in_file = i == 0 || i == 2 || i == 5 || i == 8 || i == 9;
    CAPTURE(i);
    CHECK(t->find_by_mac("02:00:00:00:00:0" + std::to_string(i), T + 101)->size() == (in_file ? 1u : 0u));
  }
}

TEST_CASE("a sync that does not list its changes still counts them and writes the same table") {
  TempTable listed, counted;
  // The client first learns 4106 from a hook, then the file renames it ext-4107:
  // the learned binding moves (4106 removed, 4107 learned), with its history.
  for (TempTable* t : {&listed, &counted}) REQUIRE((**t).apply(grant("10.99.0.10", T + 100, T, "ext-4106"), T));
  const std::string file = std::to_string(T + 200) + " 02:0a:0b:0c:0d:0e 10.99.0.10 ext-4107 *\n" +
                           std::to_string(T + 200) + " 02:00:00:00:00:0e 10.99.0.14 ext-4108 *\n";
  auto snapshot = parse_dnsmasq_lease_file(file, T + 100);
  REQUIRE(snapshot);
  auto batch = counted->begin_batch();
  REQUIRE(batch);
  SyncResult quiet;
  quiet.list_changes = false;
  REQUIRE(batch->sync_leases(*snapshot, 0, snapshot->leases.size(), T + 101, quiet));
  REQUIRE(batch->sync_absent(*snapshot, T + 101, quiet));
  REQUIRE(batch->commit());
  auto full = listed->sync(*snapshot, T + 101);
  REQUIRE(full);
  CHECK(quiet.changes.empty());
  CHECK(!full->changes.empty());
  CHECK(quiet.applied == full->applied);
  CHECK(quiet.applied == 2);
  for (TempTable* t : {&listed, &counted}) {
    CHECK(!(**t).binding("4106")->has_value());
    REQUIRE((**t).binding("4107")->has_value());
    CHECK((**t).binding("4107")->value().client.value == kMac);
    CHECK((**t).binding("4108")->has_value());
    CHECK((**t).history("4106")->size() == 3);  // learned, granted, removed
    CHECK((**t).history("4107")->size() == 1);  // learned; the renewal is not history
  }
}

TEST_CASE("the table survives closing and reopening the LMDB environment") {
  TempTable t;
  REQUIRE(t->bind("4200", *ClientRef::client_id("01:02:0a:0b:0c:0d:0e"), T));
  LeaseEvent e = grant("10.99.0.68", T + 120, T);
  e.client_id = "01:02:0a:0b:0c:0d:0e";
  REQUIRE(t->apply(e, T));
  t.reopen();
  auto found = t->find_by_extension("4200", T + 1);
  REQUIRE(found);
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].mac == kMac);
  CHECK(t->history("4200")->size() == 2);
  CHECK(t->apply(e, T + 2)->outcome == ApplyOutcome::duplicate);
}

TEST_CASE("history keeps the last N changes of an extension, oldest first") {
  TempTable t;
  REQUIRE(t->bind("4106", *ClientRef::mac(kMac), T));
  for (int i = 0; i < 6; ++i) {
    std::string ip = "10.99.0." + std::to_string(20 + i);
    REQUIRE(t->apply(grant(ip.c_str(), T + 100 * (i + 1), T + 100 * i), T + 100 * i));
  }
  auto h = t->history("4106");
  REQUIRE(h);
  REQUIRE(h->size() == 4);
  CHECK(ip_to_string(*h->back().address) == "10.99.0.25");
  CHECK(h->front().sequence < h->back().sequence);
  CHECK(h->back().kind == ChangeKind::lease_moved);
}

TEST_CASE("history keeps the last N changes when they come in one batch (counted once, then kept count of)") {
  TempTable t;
  auto batch = t->begin_batch();
  REQUIRE(batch);
  REQUIRE(batch->bind("4106", *ClientRef::mac(kMac), T));
  for (int i = 0; i < 6; ++i) {
    std::string ip = "10.99.0." + std::to_string(20 + i);
    REQUIRE(batch->apply(grant(ip.c_str(), T + 100 * (i + 1), T + 100 * i), T + 100 * i));
  }
  REQUIRE(batch->bind("4107", *ClientRef::mac("02:00:00:00:00:07"), T));  // another extension between
  REQUIRE(batch->apply(grant("10.99.0.30", T + 900, T + 800), T + 800));
  REQUIRE(batch->commit());
  auto h = t->history("4106");
  REQUIRE(h);
  REQUIRE(h->size() == 4);
  CHECK(ip_to_string(*h->back().address) == "10.99.0.30");
  CHECK(ip_to_string(*h->front().address) == "10.99.0.23");
  CHECK(t->history("4107")->size() == 1);
}

TEST_CASE("a batch applies many events in one write transaction, visible only after commit") {
  TempTable t;
  auto batch = t->begin_batch();
  REQUIRE(batch);
  for (int i = 0; i < 100; ++i) {
    LeaseEvent e = grant("10.99.0.1", T + 120, T);
    char mac[18];
    std::snprintf(mac, sizeof mac, "02:00:00:00:01:%02x", i);
    e.mac = mac;
    e.address.ip[3] = static_cast<uint8_t>(i);
    REQUIRE(batch->apply(e, T));
  }
  CHECK(t->list(T)->empty());
  REQUIRE(batch->commit());
  CHECK(t->list(T)->size() == 100);
}

TEST_CASE("replaying the captured dnsmasq calls through the hook spool ends with both leases deleted") {
  TempTable t;
  tsunagu::Bytes spool;
  int64_t now = 1795334067;
  for (const auto& base : captured_calls("dnsmasq")) {
    auto events = parse_dnsmasq_hook(CapturedCall(base).call(now++));
    REQUIRE(events);
    for (const auto& e : *events) REQUIRE(encode_lease_event(e, spool));
  }
  spool.resize(spool.size() - 3);  // the hook crashed during the last append
  auto batch = t->begin_batch();
  REQUIRE(batch);
  size_t learned = 0;
  auto result = replay_spool(spool, [&](const LeaseEvent& e) {
    auto applied = batch->apply(e, now);
    REQUIRE(applied);
    for (const auto& c : applied->changes) learned += c.kind == ChangeKind::binding_learned;
    return true;
  });
  REQUIRE(batch->commit());
  CHECK(result.records == 7);
  CHECK(result.torn_tail_bytes > 0);
  CHECK(learned == 2);  // ext-4106 (v4) and ext-4107 (v6)
  // The v4 lease was deleted; the v6 delete was torn off, so that lease is still live.
  CHECK(t->find_by_extension("4106", 1795334070).value().empty());
  auto v6 = t->find_by_extension("4107", 1795334070);
  REQUIRE(v6->size() == 1);
  CHECK(ip_to_string((*v6)[0].address) == "fd99::15b");
}

// Issue 10, item 2: a terminal restarts its DHCP client with a new client-id and
// the same MAC (PXE then the OS, a reinstall, systemd-networkd). The server gives
// a new address; when it later ends the old lease, the current one stays live.
TEST_CASE("the end of a client's old lease does not end its current lease at another address") {
  TempTable t;
  REQUIRE((*t).bind("4106", *ClientRef::mac(kMac), T));
  LeaseEvent old_lease = grant("10.99.0.68", T + 3600, T, "ext-4106");
  old_lease.client_id = "01:02:0a:0b:0c:0d:0e";
  REQUIRE(t->apply(old_lease, T));
  LeaseEvent new_lease = grant("10.99.0.70", T + 3660, T + 60, "ext-4106");
  new_lease.client_id = "ff:00:00:00:01:00:01";
  REQUIRE(t->apply(new_lease, T + 60)->changes.at(0).kind == ChangeKind::lease_moved);
  for (LeaseAction action : {LeaseAction::remove, LeaseAction::release, LeaseAction::expire}) {
    CAPTURE(to_string(action));
    // Reported later and ending a later expiry: only the address and client-id say it is the old one.
    LeaseEvent end_old = ended("10.99.0.68", T + 3700, T + 120, action);
    end_old.client_id = old_lease.client_id;
    auto applied = t->apply(end_old, T + 120);
    REQUIRE(applied);
    CHECK(applied->outcome == ApplyOutcome::stale);
    CHECK(applied->changes.empty());
    auto live = t->find_by_extension("4106", T + 121);
    REQUIRE(live->size() == 1);
    CHECK(ip_to_string((*live)[0].address) == "10.99.0.70");
  }
  // The same address but the old client-id (dnsmasq reusing the address): still not this lease.
  LeaseEvent end_other_client = ended("10.99.0.70", T + 3700, T + 130);
  end_other_client.client_id = old_lease.client_id;
  CHECK(t->apply(end_other_client, T + 130)->outcome == ApplyOutcome::stale);
  // The end of the current lease itself still ends it.
  LeaseEvent end_new = ended("10.99.0.70", T + 3660, T + 140, LeaseAction::release);
  end_new.client_id = new_lease.client_id;
  auto ended_now = t->apply(end_new, T + 140);
  REQUIRE(ended_now->changes.size() == 1);
  CHECK(ended_now->changes[0].kind == ChangeKind::lease_ended);
  CHECK(t->find_by_extension("4106", T + 141)->empty());
}

// Issue 10, item 3: ISC's execute() without the lease-time argument reports no
// expiry; the lease file's `ends` for the same grant must correct the day assumed.
TEST_CASE("a lease file's expiry corrects a hook grant that had none, and renewals keep that length") {
  TempTable t;
  LeaseEvent hook = grant("10.99.0.68", LeaseEvent::kUnknownExpiry, T + 1);
  hook.source = ServerKind::isc_dhcpd;
  REQUIRE(t->apply(hook, T + 1));
  CHECK((*t->find_by_mac(kMac, T + 2))[0].live_until == T + 1 + 86400);
  // The file block of the same grant: cltt one second before the hook's clock.
  LeaseEvent file = grant("10.99.0.68", T + 120, T);
  file.source = ServerKind::isc_dhcpd;
  LeaseFileSnapshot snapshot;
  snapshot.source = ServerKind::isc_dhcpd;
  snapshot.taken_at = T + 5;
  snapshot.leases.push_back(file);
  auto synced = t->sync(snapshot, T + 5);
  REQUIRE(synced);
  CHECK(synced->applied == 1);
  auto rec = t->find_by_mac(kMac, T + 6);
  REQUIRE(rec->size() == 1);
  CHECK((*rec)[0].expires == T + 120);
  CHECK((*rec)[0].live_until == T + 120);
  CHECK(t->find_by_mac(kMac, T + 121)->empty());
  // A renewal through the hook, again without the lease time: it lives the same 120 s.
  LeaseEvent renewal = grant("10.99.0.68", LeaseEvent::kUnknownExpiry, T + 60);
  renewal.source = ServerKind::isc_dhcpd;
  REQUIRE(t->apply(renewal, T + 60)->outcome == ApplyOutcome::applied);
  CHECK((*t->find_by_mac(kMac, T + 61))[0].live_until == T + 180);
  // A file block of an earlier transaction of that lease stays stale.
  LeaseEvent earlier = grant("10.99.0.68", T + 90, T + 30);
  earlier.source = ServerKind::isc_dhcpd;
  CHECK(t->apply(earlier, T + 62)->outcome == ApplyOutcome::stale);
}

// Issue 11 §4: a second MAC sending hostname ext-4106 moved 4106's binding, and
// lookups then answered the intruder's address.
TEST_CASE("a hostname does not take a learned extension from its client: the claim is a conflict") {
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.68", T + 120, T, "ext-4106"), T));
  REQUIRE((*t->binding("4106"))->client.value == kMac);
  LeaseEvent intruder = grant("10.99.0.99", T + 120, T + 5, "ext-4106");
  intruder.mac = "02:66:66:66:66:66";
  auto claimed = t->apply(intruder, T + 5);
  REQUIRE(claimed);
  bool reported = false;
  for (const auto& change : claimed->changes) {
    CHECK(change.kind != ChangeKind::binding_learned);
    if (change.kind == ChangeKind::binding_conflict) {
      reported = true;
      CHECK(change.extension == "4106");
      CHECK(change.binding->client.value == kMac);
      CHECK(ip_to_string(change.lease->address) == "10.99.0.99");
    }
  }
  CHECK(reported);
  CHECK((*t->binding("4106"))->client.value == kMac);
  auto lookup = t->find_by_extension("4106", T + 6);
  REQUIRE(lookup->size() == 1);
  CHECK(ip_to_string((*lookup)[0].address) == "10.99.0.68");
  // The renewal claims again: counted, not reported again.
  LeaseEvent again = intruder;
  again.expires = T + 180;
  again.reported_at = T + 60;
  auto renewed = t->apply(again, T + 60);
  for (const auto& change : renewed->changes) CHECK(change.kind != ChangeKind::binding_conflict);
  auto conflicts = t->conflicts();
  REQUIRE(conflicts->size() == 1);
  CHECK((*conflicts)[0].extension == "4106");
  CHECK((*conflicts)[0].claimant.value == "02:66:66:66:66:66");
  CHECK((*conflicts)[0].hostname == "ext-4106");
  CHECK((*conflicts)[0].attempts == 2);
  CHECK((*conflicts)[0].first_seen == T + 5);
  CHECK((*conflicts)[0].last_seen == T + 60);
  // The history of 4106 shows the claim.
  bool in_history = false;
  auto history = t->history("4106");
  REQUIRE(history);
  for (const auto& h : *history) in_history = in_history || h.kind == ChangeKind::binding_conflict;
  CHECK(in_history);
  // Only an admin moves it (the terminal was really replaced); that clears the conflicts.
  REQUIRE(t->bind("4106", *ClientRef::mac("02:66:66:66:66:66"), T + 70));
  CHECK(t->conflicts()->empty());
  CHECK(ip_to_string((*t->find_by_extension("4106", T + 71))[0].address) == "10.99.0.99");
}

TEST_CASE("conflicts are kept for at most eight claimants of one extension") {
  TempTable t;
  REQUIRE(t->bind("4106", *ClientRef::mac(kMac), T));
  for (int i = 0; i < 20; ++i) {
    LeaseEvent claim = grant(("10.99.0." + std::to_string(100 + i)).c_str(), T + 120, T + i, "ext-4106");
    char mac[18];
    std::snprintf(mac, sizeof mac, "02:77:00:00:00:%02x", i);
    claim.mac = mac;
    auto applied = t->apply(claim, T + i);
    REQUIRE(applied);
    bool reported = false;
    for (const auto& change : applied->changes) reported = reported || change.kind == ChangeKind::binding_conflict;
    CHECK(reported);  // every new claimant is still reported (logged), only not all stored
  }
  CHECK(t->conflicts()->size() == kMaxConflictsPerExtension);
  CHECK((*t->binding("4106"))->client.value == kMac);
}

// Seen in CI-like runs of integration/lan-agent-node: with a new client-id the
// terminal got .77; dnsmasq then ran `old` for its previous lease .78 (taking
// the hostname off it) in the same second, with the same expiry.
TEST_CASE("a renewal of a client's previous lease at another address does not move it back") {
  TempTable t;
  REQUIRE(t->apply(grant("10.99.0.78", T + 120, T, "ext-4106"), T));
  LeaseEvent now_at_77 = grant("10.99.0.77", T + 120, T, "ext-4106");
  now_at_77.client_id = "ff:00:01";
  REQUIRE(t->apply(now_at_77, T)->changes.at(0).kind == ChangeKind::lease_moved);
  LeaseEvent old_renewed = grant("10.99.0.78", T + 120, T);
  old_renewed.action = LeaseAction::renew;
  old_renewed.client_id = "01:02:0a:0b:0c:0d:0e";
  CHECK(t->apply(old_renewed, T)->outcome == ApplyOutcome::stale);
  CHECK(ip_to_string((*t->find_by_mac(kMac, T + 1))[0].address) == "10.99.0.77");
  // A later grant at the old address (a real move back) still moves it.
  auto back = t->apply(grant("10.99.0.78", T + 200, T + 80), T + 80);
  CHECK(back->changes.at(0).kind == ChangeKind::lease_moved);
}

TEST_CASE("held reads share one snapshot until released; a write through the table releases it") {
  TempTable t;
  REQUIRE((*t).bind("4106", *ClientRef::mac(kMac), T));
  REQUIRE(t->apply(grant("10.99.0.68", T + 120, T), T));
  // A second table on the same environment writes behind the first one's back.
  auto other = AllocationTable::open(*t.env, t.options);
  REQUIRE(other);

  REQUIRE(t->hold_reads());
  CHECK(t->holding_reads());
  REQUIRE(other->apply(ended("10.99.0.68", T + 120, T + 5), T + 5));
  // The snapshot taken by hold_reads(): the lease is still there.
  auto held = t->find_by_extension("4106", T + 6);
  REQUIRE(held);
  CHECK(held->size() == 1);
  REQUIRE(t->binding("4106"));
  CHECK(t->binding("4106")->has_value());
  t->release_reads();
  CHECK_FALSE(t->holding_reads());
  CHECK(t->find_by_extension("4106", T + 6)->empty());

  // The table's own write ends the hold: what it wrote is read back.
  REQUIRE(t->hold_reads());
  REQUIRE(t->apply(grant("10.99.0.69", T + 300, T + 10), T + 10));
  CHECK_FALSE(t->holding_reads());
  auto after = t->find_by_extension("4106", T + 11);
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK(ip_to_string((*after)[0].address) == "10.99.0.69");
}
