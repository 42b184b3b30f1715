#include "allocation/allocation_table.hpp"

#include <algorithm>
#include <cstring>

#include "allocation/field_normalisation.hpp"

// LMDB layout (database names prefixed "alloc_"):
//   leases     lease key ("4|m=aa:..")             -> encoded LeaseRecord
//   by_client  client key + '\0' + lease key        -> ""   (MAC and client-id of each record)
//   by_address family byte + address bytes          -> lease key (the latest lease of the address)
//   deadlines  be64(deadline) + lease key           -> ""   (expiry of active, purge time of ended)
//   bindings   extension                           -> encoded ExtensionBinding
//   bound      client key                           -> extension
//   history    extension + '\0' + be64(sequence)    -> encoded HistoryEntry
//   meta       "sequence"                           -> be64(next history sequence)
//   conflicts  extension + '\0' + client key         -> encoded BindingConflict (its extension and client from the key)

namespace tsunagu::alloc {
namespace {

using storage::StoreError;
using storage::Transaction;

constexpr uint8_t kRecordVersion = 1;
constexpr char kSequenceKey[] = "sequence";

TableError from_store(const StoreError& e) { return TableError{TableErrc::storage, e.code, e.detail}; }
Unexpected<TableError> store_fail(const StoreError& e) { return Unexpected(from_store(e)); }
Unexpected<TableError> fail(TableErrc code, std::string detail) {
  return Unexpected(TableError{code, storage::StoreErrc::other, std::move(detail)});
}
Unexpected<TableError> corrupted() { return fail(TableErrc::corrupted_record, "stored value cannot be decoded"); }

// ---- a small binary writer/reader for stored values ----

// Appends to its own buffer, or to a caller's (the bulk load writes every
// value of a database into one buffer).
class Writer {
 public:
  Writer() : out_(&own_) {}
  explicit Writer(Bytes& into) : out_(&into) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void u8(uint8_t v) { out_->push_back(std::byte{v}); }
  void i64(int64_t v) {
    size_t at = out_->size();
    out_->resize(at + 8);
    store_be64(out_->data() + at, static_cast<uint64_t>(v));
  }
  void str(std::string_view s) {
    size_t at = out_->size();
    out_->resize(at + 2);
    store_be16(out_->data() + at, static_cast<uint16_t>(s.size()));
    auto b = as_bytes(s);
    out_->insert(out_->end(), b.begin(), b.end());
  }
  void address(const proto::SocketAddress& a) {
    u8(static_cast<uint8_t>(a.family));
    for (uint8_t b : a.ip) u8(b);
  }
  const Bytes& bytes() const { return *out_; }

 private:
  Bytes own_;
  Bytes* out_;
};

class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}
  bool u8(uint8_t& v) {
    if (pos_ + 1 > in_.size()) return false;
    v = std::to_integer<uint8_t>(in_[pos_++]);
    return true;
  }
  bool i64(int64_t& v) {
    if (pos_ + 8 > in_.size()) return false;
    v = static_cast<int64_t>(load_be64(in_.data() + pos_));
    pos_ += 8;
    return true;
  }
  bool str(std::string& s) {
    if (pos_ + 2 > in_.size()) return false;
    size_t n = load_be16(in_.data() + pos_);
    pos_ += 2;
    if (pos_ + n > in_.size()) return false;
    s.assign(as_chars(in_.subspan(pos_, n)));
    pos_ += n;
    return true;
  }
  bool address(proto::SocketAddress& a) {
    uint8_t family = 0;
    if (!u8(family) || (family != 1 && family != 2)) return false;
    a.family = static_cast<proto::SocketAddress::Family>(family);
    a.port = 0;
    for (auto& b : a.ip) {
      if (!u8(b)) return false;
    }
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  ByteView in_;
  size_t pos_ = 0;
};

// A LeaseRecord's stored form, from its parts (the bulk load has them in a
// LeaseEvent and a key buffer, and builds no LeaseRecord).
struct RecordParts {
  LeaseState state;
  ServerKind source;
  const proto::SocketAddress& address;
  int64_t expires, live_until, reported_at, updated_at;
  std::string_view key, mac, client_id, hostname, server;
};

void write_record(Writer& w, const RecordParts& r) {
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(r.state));
  w.u8(static_cast<uint8_t>(r.source));
  w.address(r.address);
  w.i64(r.expires);
  w.i64(r.live_until);
  w.i64(r.reported_at);
  w.i64(r.updated_at);
  w.str(r.key);
  w.str(r.mac);
  w.str(r.client_id);
  w.str(r.hostname);
  w.str(r.server);
}

Bytes encode_record(const LeaseRecord& r) {
  Writer w;
  write_record(w, RecordParts{r.state, r.source, r.address, r.expires, r.live_until, r.reported_at, r.updated_at,
                              r.key, r.mac, r.client_id, r.hostname, r.server});
  return w.bytes();
}

std::optional<LeaseRecord> decode_record(ByteView in) {
  Reader r(in);
  LeaseRecord rec;
  uint8_t version = 0, state = 0, source = 0;
  if (!r.u8(version) || version != kRecordVersion || !r.u8(state) || !r.u8(source) || state < 1 || state > 5 ||
      source > 3 || !r.address(rec.address) || !r.i64(rec.expires) || !r.i64(rec.live_until) ||
      !r.i64(rec.reported_at) || !r.i64(rec.updated_at) || !r.str(rec.key) || !r.str(rec.mac) ||
      !r.str(rec.client_id) || !r.str(rec.hostname) || !r.str(rec.server) || !r.done())
    return std::nullopt;
  rec.state = static_cast<LeaseState>(state);
  rec.source = static_cast<ServerKind>(source);
  return rec;
}

void write_binding(Writer& w, BindingOrigin origin, int64_t since, std::string_view extension,
                   std::string_view client_key) {
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(origin));
  w.i64(since);
  w.str(extension);
  w.str(client_key);
}

Bytes encode_binding(const ExtensionBinding& b) {
  Writer w;
  write_binding(w, b.origin, b.since, b.extension, b.client.index_key());
  return w.bytes();
}

std::optional<ExtensionBinding> decode_binding(ByteView in) {
  Reader r(in);
  ExtensionBinding b;
  uint8_t version = 0, origin = 0;
  std::string client;
  if (!r.u8(version) || version != kRecordVersion || !r.u8(origin) || (origin != 1 && origin != 2) ||
      !r.i64(b.since) || !r.str(b.extension) || !r.str(client) || !r.done())
    return std::nullopt;
  auto ref = ClientRef::from_index_key(client);
  if (!ref) return std::nullopt;
  b.origin = static_cast<BindingOrigin>(origin);
  b.client = std::move(*ref);
  return b;
}

void write_history(Writer& w, ChangeKind kind, uint64_t sequence, int64_t at, int64_t expires,
                   const proto::SocketAddress* address, std::string_view client) {
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(kind));
  w.i64(static_cast<int64_t>(sequence));
  w.i64(at);
  w.i64(expires);
  w.u8(address != nullptr ? 1 : 0);
  if (address != nullptr) w.address(*address);
  w.str(client);
}

Bytes encode_history(const HistoryEntry& h) {
  Writer w;
  write_history(w, h.kind, h.sequence, h.at, h.expires, h.address ? &*h.address : nullptr, h.client);
  return w.bytes();
}

std::optional<HistoryEntry> decode_history(ByteView in) {
  Reader r(in);
  HistoryEntry h;
  uint8_t version = 0, kind = 0, has_address = 0;
  int64_t sequence = 0;
  if (!r.u8(version) || version != kRecordVersion || !r.u8(kind) || kind < 1 || kind > 10 || !r.i64(sequence) ||
      !r.i64(h.at) || !r.i64(h.expires) || !r.u8(has_address))
    return std::nullopt;
  if (has_address != 0) {
    proto::SocketAddress a;
    if (!r.address(a)) return std::nullopt;
    h.address = a;
  }
  if (!r.str(h.client) || !r.done()) return std::nullopt;
  h.kind = static_cast<ChangeKind>(kind);
  h.sequence = static_cast<uint64_t>(sequence);
  return h;
}

Bytes encode_conflict(const BindingConflict& c) {
  Writer w;
  w.u8(kRecordVersion);
  w.i64(c.first_seen);
  w.i64(c.last_seen);
  w.i64(static_cast<int64_t>(c.attempts));
  w.address(c.address);
  w.str(c.hostname);
  return w.bytes();
}

std::optional<BindingConflict> decode_conflict(ByteView key, ByteView in) {
  Reader r(in);
  BindingConflict c;
  uint8_t version = 0;
  int64_t attempts = 0;
  if (!r.u8(version) || version != kRecordVersion || !r.i64(c.first_seen) || !r.i64(c.last_seen) ||
      !r.i64(attempts) || !r.address(c.address) || !r.str(c.hostname) || !r.done())
    return std::nullopt;
  std::string_view k = as_chars(key);
  size_t zero = k.find('\0');
  if (zero == std::string_view::npos) return std::nullopt;
  auto client = ClientRef::from_index_key(k.substr(zero + 1));
  if (!client) return std::nullopt;
  c.extension = std::string(k.substr(0, zero));
  c.claimant = std::move(*client);
  c.attempts = static_cast<uint64_t>(attempts);
  return c;
}

// ---- keys ----

void append_lease_key(const LeaseEvent& e, std::string& out) {
  out += e.is_v6() ? "6|" : "4|";
  const bool by_mac = e.is_v6() ? e.client_id.empty() : !e.mac.empty();
  out += by_mac ? "m=" : "c=";
  out += by_mac ? e.mac.view() : std::string_view(e.client_id);
}

std::string lease_key(const LeaseEvent& e) {
  std::string key;
  append_lease_key(e, key);
  return key;
}

std::string client_index(std::string_view client_key, std::string_view lease) {
  std::string k(client_key);
  k.push_back('\0');
  k.append(lease);
  return k;
}

std::string address_key(const proto::SocketAddress& a) {
  std::string k(1, static_cast<char>(a.family));
  const size_t n = a.family == proto::SocketAddress::Family::ipv4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i) k.push_back(static_cast<char>(a.ip[i]));
  return k;
}

std::string deadline_key(int64_t deadline, std::string_view lease) {
  std::string k(8, '\0');
  store_be64(reinterpret_cast<std::byte*>(k.data()), static_cast<uint64_t>(deadline));
  k.append(lease);
  return k;
}

std::string history_prefix(std::string_view extension) {
  std::string k(extension);
  k.push_back('\0');
  return k;
}

std::vector<std::string> client_keys(const LeaseRecord& r) {
  std::vector<std::string> keys;
  if (!r.mac.empty()) keys.push_back("m=" + r.mac);
  if (!r.client_id.empty()) keys.push_back("c=" + r.client_id);
  return keys;
}

LeaseState state_for(LeaseAction action) {
  switch (action) {
    case LeaseAction::grant:
    case LeaseAction::renew: return LeaseState::active;
    case LeaseAction::release: return LeaseState::released;
    case LeaseAction::expire: return LeaseState::expired;
    case LeaseAction::decline: return LeaseState::declined;
    case LeaseAction::remove: return LeaseState::removed;
  }
  return LeaseState::removed;
}

enum class Order { newer, duplicate, older };

// dnsmasq and ISC dhcpd run their hook once at a time, in the order of the
// changes; Kea's calls overlap, so arrival order says nothing there.
bool calls_hooks_in_order(ServerKind source) {
  return source == ServerKind::dnsmasq || source == ServerKind::isc_dhcpd;
}

// An end names one lease: its address, and its client-id when it has one. The
// record under the same MAC may already be a newer lease of that client (a DHCP
// client restarted with a new client-id got a new address), which the old
// lease's end must not touch.
bool names_another_lease(const LeaseEvent& e, const LeaseRecord& r) {
  if (e.address != r.address) return true;
  return !e.client_id.empty() && !r.client_id.empty() && e.client_id != r.client_id;
}

// Hook clocks and the server's own clock (ISC's cltt) tick in whole seconds and
// the hook runs just after the server decided: reports this close describe the
// same transaction.
constexpr int64_t kSameTransactionSeconds = 2;

// The ordering rules of allocation_table.hpp.
Order compare(const LeaseEvent& e, const LeaseRecord& r) {
  const bool e_end = ends_lease(e.action);
  const bool r_end = r.state != LeaseState::active;
  const bool both_exp = e.expires != LeaseEvent::kUnknownExpiry && r.expires != LeaseEvent::kUnknownExpiry;
  const bool both_rep = e.reported_at != 0 && r.reported_at != 0;
  if (!e_end && !r_end) {
    if (both_exp && e.expires != r.expires) return e.expires > r.expires ? Order::newer : Order::older;
    // A renewal names the lease it renews: one at another address is another
    // lease of this client (dnsmasq's `old` when it takes the hostname off a
    // client's previous lease), never a move, unless it ends later (above).
    if (e.action == LeaseAction::renew && e.address != r.address) return Order::older;
    // The same grant, now with the expiry the hook did not pass (ISC's execute()
    // without the lease time, then the lease file's `ends`): the known expiry wins.
    if (e.expires != LeaseEvent::kUnknownExpiry && r.expires == LeaseEvent::kUnknownExpiry &&
        e.address == r.address && both_rep && e.reported_at + kSameTransactionSeconds >= r.reported_at)
      return Order::newer;
    if (!both_exp && both_rep && e.reported_at != r.reported_at)
      return e.reported_at > r.reported_at ? Order::newer : Order::older;
    if (e.address != r.address) return both_rep && e.reported_at < r.reported_at ? Order::older : Order::newer;
    return Order::duplicate;
  }
  if (e_end && !r_end) {
    if (names_another_lease(e, r)) return Order::older;
    if (both_exp && e.expires >= r.expires) return Order::newer;
    if (both_rep && e.reported_at >= r.reported_at) return Order::newer;
    if (!both_exp && !both_rep) return Order::newer;
    return Order::older;
  }
  if (!e_end && r_end) {
    // Hook clocks tick in whole seconds: a release and the next grant (a
    // rebooting phone, `udhcpc -R`) often share one. A tie goes to the event
    // that arrived later (dnsmasq and ISC call their hooks one at a time, in
    // order: not Kea), even when the grant repeats the ended lease's expiry (grant,
    // release and grant again within one second). A late copy of the old grant
    // reported in an earlier second is refused; without a hook clock, by its
    // expiry.
    if (both_rep && e.reported_at != r.reported_at)
      return e.reported_at > r.reported_at ? Order::newer : Order::older;
    if (both_rep && calls_hooks_in_order(e.source)) return Order::newer;
    if (both_exp && e.expires <= r.expires) return Order::older;
    return Order::newer;
  }
  return Order::duplicate;
}

// Without an expiry, a lease lives `assumed` seconds from its report.
int64_t live_until_of(int64_t expires, int64_t reported_at, int64_t assumed) {
  return expires != LeaseEvent::kUnknownExpiry ? expires
                                               : std::min(reported_at, LeaseEvent::kInfinite - assumed) + assumed;
}

// An active lease's deadline is its end (kInfinite: none); an ended record's
// is when its tombstone may go.
int64_t deadline_for(LeaseState state, int64_t live_until, int64_t updated_at, int64_t retention) {
  if (state == LeaseState::active) return live_until;
  return updated_at > LeaseEvent::kInfinite - retention ? LeaseEvent::kInfinite : updated_at + retention;
}

Expected<void, TableError> validate(const LeaseEvent& e) {
  if (e.mac.empty() && e.client_id.empty()) return fail(TableErrc::invalid_argument, "event without MAC or client-id");
  if (e.address.port != 0) return fail(TableErrc::invalid_argument, "event address has a port");
  if (e.expires < 0 || e.reported_at < 0) return fail(TableErrc::invalid_argument, "negative time");
  return {};
}

Expected<void, TableError> validate_extension(std::string_view ext) {
  if (ext.empty() || ext.size() > kMaxExtensionLength)
    return fail(TableErrc::invalid_argument, "extension must be 1-64 characters");
  for (char c : ext) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return fail(TableErrc::invalid_argument, "extension has a control or space character");
  }
  return {};
}

Expected<std::optional<LeaseRecord>, TableError> get_record(Transaction& txn, storage::DatabaseHandle db,
                                                            std::string_view key) {
  auto v = txn.get(db, as_bytes(key));
  if (!v) return store_fail(v.error());
  if (!*v) return std::optional<LeaseRecord>{};
  auto rec = decode_record(**v);
  if (!rec) return corrupted();
  return std::optional<LeaseRecord>{std::move(*rec)};
}

Expected<std::optional<ExtensionBinding>, TableError> get_binding(Transaction& txn, storage::DatabaseHandle db,
                                                                  std::string_view ext) {
  auto v = txn.get(db, as_bytes(ext));
  if (!v) return store_fail(v.error());
  if (!*v) return std::optional<ExtensionBinding>{};
  auto b = decode_binding(**v);
  if (!b) return corrupted();
  return std::optional<ExtensionBinding>{std::move(*b)};
}

Expected<std::optional<std::string>, TableError> get_string(Transaction& txn, storage::DatabaseHandle db,
                                                            std::string_view key) {
  auto v = txn.get(db, as_bytes(key));
  if (!v) return store_fail(v.error());
  if (!*v) return std::optional<std::string>{};
  return std::optional<std::string>{std::string(as_chars(**v))};
}

// Lease keys of a client, from by_client.
Expected<std::vector<std::string>, TableError> leases_of(Transaction& txn, storage::DatabaseHandle db,
                                                         std::string_view client_key) {
  std::vector<std::string> keys;
  const std::string prefix = client_index(client_key, "");
  auto ok = txn.scan_prefix(db, as_bytes(prefix), {}, [&](ByteView key, ByteView) {
    keys.emplace_back(as_chars(key.subspan(prefix.size())));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  return keys;
}

}  // namespace

// ---------------- AllocationTable ----------------

Expected<AllocationTable, TableError> AllocationTable::open(storage::Environment& env, TableOptions options) {
  Databases dbs;
  const std::pair<const char*, storage::DatabaseHandle*> names[] = {
      {"alloc_leases", &dbs.leases},       {"alloc_by_client", &dbs.by_client}, {"alloc_by_address", &dbs.by_address},
      {"alloc_deadlines", &dbs.deadlines}, {"alloc_bindings", &dbs.bindings},   {"alloc_bound", &dbs.bound},
      {"alloc_history", &dbs.history},     {"alloc_meta", &dbs.meta},           {"alloc_conflicts", &dbs.conflicts},
  };
  for (const auto& [name, handle] : names) {
    auto h = env.open_database(name);
    if (!h) return store_fail(h.error());
    *handle = *h;
  }
  if (options.history_depth == 0) options.history_depth = 1;
  return AllocationTable(env, std::move(options), dbs);
}

Expected<void, TableError> AllocationTable::hold_reads() {
  if (held_read_) return {};
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  held_read_ = std::move(*txn);
  return {};
}

Expected<storage::Transaction*, TableError> AllocationTable::reader(std::optional<storage::Transaction>& own) {
  if (held_read_) return &*held_read_;
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  own = std::move(*txn);
  return &*own;
}

Expected<AllocationTable::Batch, TableError> AllocationTable::begin_batch() {
  release_reads();
  auto txn = env_->begin_write();
  if (!txn) return store_fail(txn.error());
  return Batch(*this, std::move(*txn));
}

namespace {
template <class F>
auto one_shot(AllocationTable& table, F&& body) -> decltype(body(std::declval<AllocationTable::Batch&>())) {
  auto batch = table.begin_batch();
  if (!batch) return Unexpected(batch.error());
  auto result = body(*batch);
  if (!result) return result;
  if (auto ok = batch->commit(); !ok) return Unexpected(ok.error());
  return result;
}
}  // namespace

Expected<ApplyResult, TableError> AllocationTable::apply(const LeaseEvent& event, int64_t now) {
  return one_shot(*this, [&](Batch& b) { return b.apply(event, now); });
}
Expected<std::vector<TableChange>, TableError> AllocationTable::bind(std::string_view extension,
                                                                     const ClientRef& client, int64_t now) {
  return one_shot(*this, [&](Batch& b) { return b.bind(extension, client, now); });
}
Expected<std::vector<TableChange>, TableError> AllocationTable::unbind(std::string_view extension, int64_t now) {
  return one_shot(*this, [&](Batch& b) { return b.unbind(extension, now); });
}
Expected<std::vector<TableChange>, TableError> AllocationTable::expire_stale(int64_t now) {
  return one_shot(*this, [&](Batch& b) { return b.expire_stale(now); });
}
Expected<SyncResult, TableError> AllocationTable::sync(const LeaseFileSnapshot& snapshot, int64_t now) {
  return one_shot(*this, [&](Batch& b) { return b.sync(snapshot, now); });
}

Expected<std::vector<LeaseRecord>, TableError> AllocationTable::find_by_client(const ClientRef& client, int64_t now,
                                                                               bool include_ended) {
  std::optional<storage::Transaction> own;
  auto txn = reader(own);
  if (!txn) return Unexpected(txn.error());
  auto keys = leases_of(**txn, dbs_.by_client, client.index_key());
  if (!keys) return Unexpected(keys.error());
  std::vector<LeaseRecord> out;
  for (const std::string& key : *keys) {
    auto rec = get_record(**txn, dbs_.leases, key);
    if (!rec) return Unexpected(rec.error());
    if (*rec && (include_ended || (*rec)->live(now))) out.push_back(std::move(**rec));
  }
  return out;
}

Expected<std::vector<LeaseRecord>, TableError> AllocationTable::find_by_extension(std::string_view extension,
                                                                                  int64_t now, bool include_ended) {
  auto b = binding(extension);
  if (!b) return Unexpected(b.error());
  if (!*b) return std::vector<LeaseRecord>{};
  return find_by_client((*b)->client, now, include_ended);
}

Expected<std::vector<LeaseRecord>, TableError> AllocationTable::find_by_mac(std::string_view mac, int64_t now,
                                                                            bool include_ended) {
  auto ref = ClientRef::mac(mac);
  if (!ref) return fail(TableErrc::invalid_argument, "not a MAC address");
  return find_by_client(*ref, now, include_ended);
}

Expected<std::optional<LeaseRecord>, TableError> AllocationTable::find_by_address(const proto::SocketAddress& address,
                                                                                  int64_t now, bool include_ended) {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  auto key = get_string(*txn, dbs_.by_address, address_key(address));
  if (!key) return Unexpected(key.error());
  if (!*key) return std::optional<LeaseRecord>{};
  auto rec = get_record(*txn, dbs_.leases, **key);
  if (!rec) return Unexpected(rec.error());
  if (!*rec || (*rec)->address.ip != address.ip || (*rec)->address.family != address.family)
    return std::optional<LeaseRecord>{};
  if (!include_ended && !(*rec)->live(now)) return std::optional<LeaseRecord>{};
  return rec;
}

Expected<std::vector<LeaseRecord>, TableError> AllocationTable::list(int64_t now, bool include_ended) {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  std::vector<LeaseRecord> out;
  bool bad = false;
  auto ok = txn->scan(dbs_.leases, {}, [&](ByteView, ByteView value) {
    auto rec = decode_record(value);
    if (!rec) {
      bad = true;
      return false;
    }
    if (include_ended || rec->live(now)) out.push_back(std::move(*rec));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  if (bad) return corrupted();
  return out;
}

Expected<std::optional<ExtensionBinding>, TableError> AllocationTable::binding(std::string_view extension) {
  std::optional<storage::Transaction> own;
  auto txn = reader(own);
  if (!txn) return Unexpected(txn.error());
  return get_binding(**txn, dbs_.bindings, extension);
}

Expected<std::vector<ExtensionBinding>, TableError> AllocationTable::bindings() {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  std::vector<ExtensionBinding> out;
  bool bad = false;
  auto ok = txn->scan(dbs_.bindings, {}, [&](ByteView, ByteView value) {
    auto b = decode_binding(value);
    if (!b) {
      bad = true;
      return false;
    }
    out.push_back(std::move(*b));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  if (bad) return corrupted();
  return out;
}

Expected<std::vector<BindingConflict>, TableError> AllocationTable::conflicts() {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  std::vector<BindingConflict> out;
  bool bad = false;
  auto ok = txn->scan(dbs_.conflicts, {}, [&](ByteView key, ByteView value) {
    auto c = decode_conflict(key, value);
    if (!c) {
      bad = true;
      return false;
    }
    out.push_back(std::move(*c));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  if (bad) return corrupted();
  return out;
}

Expected<std::vector<HistoryEntry>, TableError> AllocationTable::history(std::string_view extension) {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  std::vector<HistoryEntry> out;
  const std::string prefix = history_prefix(extension);
  bool bad = false;
  auto ok = txn->scan_prefix(dbs_.history, as_bytes(prefix), {}, [&](ByteView, ByteView value) {
    auto h = decode_history(value);
    if (!h) {
      bad = true;
      return false;
    }
    out.push_back(std::move(*h));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  if (bad) return corrupted();
  return out;
}

Expected<std::optional<int64_t>, TableError> AllocationTable::next_deadline() {
  auto txn = env_->begin_read();
  if (!txn) return store_fail(txn.error());
  std::optional<int64_t> deadline;
  auto ok = txn->scan(dbs_.deadlines, {}, [&](ByteView key, ByteView) {
    if (key.size() >= 8) deadline = static_cast<int64_t>(load_be64(key.data()));
    return false;
  });
  if (!ok) return store_fail(ok.error());
  return deadline;
}

// ---------------- Batch ----------------

int64_t AllocationTable::Batch::deadline_of(const LeaseRecord& r) const {
  return deadline_for(r.state, r.live_until, r.updated_at, table_->options_.tombstone_retention);
}

Expected<void, TableError> AllocationTable::Batch::store(const LeaseRecord& r, const std::optional<LeaseRecord>& before) {
  const Databases& db = table_->dbs_;
  static constexpr std::byte kEmpty[1] = {};
  const ByteView empty(kEmpty, 0);
  if (before) {
    const int64_t old_deadline = deadline_of(*before);
    if (old_deadline != deadline_of(r) && old_deadline != LeaseEvent::kInfinite) {
      if (auto ok = txn_.erase(db.deadlines, as_bytes(deadline_key(old_deadline, r.key))); !ok) return store_fail(ok.error());
    }
    const auto now_keys = client_keys(r);
    for (const std::string& ck : client_keys(*before)) {
      if (std::find(now_keys.begin(), now_keys.end(), ck) == now_keys.end()) {
        if (auto ok = txn_.erase(db.by_client, as_bytes(client_index(ck, r.key))); !ok) return store_fail(ok.error());
      }
    }
    if (before->address != r.address) {
      auto owner = get_string(txn_, db.by_address, address_key(before->address));
      if (!owner) return Unexpected(owner.error());
      if (*owner && **owner == r.key) {
        if (auto ok = txn_.erase(db.by_address, as_bytes(address_key(before->address))); !ok) return store_fail(ok.error());
      }
    }
  }
  if (auto ok = txn_.put(db.leases, as_bytes(r.key), encode_record(r)); !ok) return store_fail(ok.error());
  const int64_t deadline = deadline_of(r);
  if (deadline != LeaseEvent::kInfinite && (!before || deadline_of(*before) != deadline)) {
    if (auto ok = txn_.put(db.deadlines, as_bytes(deadline_key(deadline, r.key)), empty); !ok) return store_fail(ok.error());
  }
  if (!before || before->mac != r.mac || before->client_id != r.client_id) {
    for (const std::string& ck : client_keys(r)) {
      if (auto ok = txn_.put(db.by_client, as_bytes(client_index(ck, r.key)), empty); !ok) return store_fail(ok.error());
    }
  }
  // The newest lease of an address owns it: a grant takes the address over.
  if (r.state == LeaseState::active && (!before || before->address != r.address || before->state != r.state)) {
    if (auto ok = txn_.put(db.by_address, as_bytes(address_key(r.address)), as_bytes(r.key)); !ok) return store_fail(ok.error());
  }
  return {};
}

Expected<void, TableError> AllocationTable::Batch::erase(const LeaseRecord& r) {
  const Databases& db = table_->dbs_;
  const int64_t deadline = deadline_of(r);
  if (deadline != LeaseEvent::kInfinite) {
    if (auto ok = txn_.erase(db.deadlines, as_bytes(deadline_key(deadline, r.key))); !ok) return store_fail(ok.error());
  }
  for (const std::string& ck : client_keys(r)) {
    if (auto ok = txn_.erase(db.by_client, as_bytes(client_index(ck, r.key))); !ok) return store_fail(ok.error());
  }
  auto owner = get_string(txn_, db.by_address, address_key(r.address));
  if (!owner) return Unexpected(owner.error());
  if (*owner && **owner == r.key) {
    if (auto ok = txn_.erase(db.by_address, as_bytes(address_key(r.address))); !ok) return store_fail(ok.error());
  }
  if (auto ok = txn_.erase(db.leases, as_bytes(r.key)); !ok) return store_fail(ok.error());
  return {};
}

Expected<std::optional<std::string>, TableError> AllocationTable::Batch::extension_of(const LeaseRecord& r) {
  for (const std::string& ck : client_keys(r)) {
    auto ext = get_string(txn_, table_->dbs_.bound, ck);
    if (!ext) return Unexpected(ext.error());
    if (*ext) return ext;
  }
  return std::optional<std::string>{};
}

Expected<void, TableError> AllocationTable::Batch::add_history(const TableChange& change, int64_t now) {
  if (change.extension.empty() || change.kind == ChangeKind::lease_renewed) return {};
  const Databases& db = table_->dbs_;
  if (!next_sequence_) {
    auto stored = txn_.get(db.meta, as_bytes(kSequenceKey));
    if (!stored) return store_fail(stored.error());
    next_sequence_ = *stored && (*stored)->size() == 8 ? load_be64((*stored)->data()) : 1;
  }
  const uint64_t seq = (*next_sequence_)++;

  HistoryEntry h;
  h.sequence = seq;
  h.at = now;
  h.kind = change.kind;
  if (change.lease) {
    h.address = change.lease->address;
    h.expires = change.lease->expires;
    auto keys = client_keys(*change.lease);
    if (!keys.empty()) h.client = keys.front();
  } else if (change.binding) {
    h.client = change.binding->client.index_key();
  }
  const std::string prefix = history_prefix(change.extension);
  std::string key = prefix + std::string(8, '\0');
  store_be64(reinterpret_cast<std::byte*>(key.data() + prefix.size()), seq);
  if (auto ok = txn_.put(db.history, as_bytes(key), encode_history(h)); !ok) return store_fail(ok.error());

  // Counted first, and the keys copied only when some must go: almost every
  // change (a first sync learns 100,000 extensions) leaves the depth unreached.
  // A new lease's learned binding and its grant are two entries of one
  // extension in a row: the count of the first saves the second its scan.
  size_t kept = 0;
  if (counted_extension_ && *counted_extension_ == change.extension) {
    kept = ++counted_entries_;
  } else {
    auto counted = txn_.scan_prefix(db.history, as_bytes(prefix), {}, [&](ByteView, ByteView) {
      ++kept;
      return true;
    });
    if (!counted) return store_fail(counted.error());
  }
  counted_extension_ = change.extension;
  counted_entries_ = std::min(kept, table_->options_.history_depth);
  if (kept <= table_->options_.history_depth) return {};
  std::vector<std::string> oldest;
  const size_t excess = kept - table_->options_.history_depth;
  auto ok = txn_.scan_prefix(db.history, as_bytes(prefix), {}, [&](ByteView k, ByteView) {
    oldest.emplace_back(as_chars(k));
    return oldest.size() < excess;
  });
  if (!ok) return store_fail(ok.error());
  for (const std::string& k : oldest) {
    if (auto e = txn_.erase(db.history, as_bytes(k)); !e) return store_fail(e.error());
  }
  return {};
}

Expected<void, TableError> AllocationTable::Batch::set_binding(const ExtensionBinding& binding, int64_t now,
                                                               std::vector<TableChange>& changes) {
  auto old = get_binding(txn_, table_->dbs_.bindings, binding.extension);
  if (!old) return Unexpected(old.error());
  auto other = get_string(txn_, table_->dbs_.bound, binding.client.index_key());
  if (!other) return Unexpected(other.error());
  return set_binding(binding, *old, *other, now, changes);
}

Expected<void, TableError> AllocationTable::Batch::set_binding(const ExtensionBinding& binding,
                                                               const std::optional<ExtensionBinding>& old,
                                                               const std::optional<std::string>& other, int64_t now,
                                                               std::vector<TableChange>& changes) {
  const Databases& db = table_->dbs_;
  const std::string client_key = binding.client.index_key();
  // The extension's previous client loses its reverse entry.
  if (old) {
    if (auto ok = txn_.erase(db.bound, as_bytes(old->client.index_key())); !ok) return store_fail(ok.error());
  }
  // The client's previous extension loses its binding.
  if (other && *other != binding.extension) {
    auto other_binding = get_binding(txn_, db.bindings, *other);
    if (!other_binding) return Unexpected(other_binding.error());
    if (auto ok = txn_.erase(db.bindings, as_bytes(*other)); !ok) return store_fail(ok.error());
    TableChange removed{ChangeKind::binding_removed, *other, std::nullopt, std::nullopt, *other_binding};
    if (auto ok = add_history(removed, now); !ok) return ok;
    changes.push_back(std::move(removed));
  }
  if (auto ok = txn_.put(db.bindings, as_bytes(binding.extension), encode_binding(binding)); !ok) return store_fail(ok.error());
  if (auto ok = txn_.put(db.bound, as_bytes(client_key), as_bytes(binding.extension)); !ok) return store_fail(ok.error());
  TableChange set{binding.origin == BindingOrigin::admin ? ChangeKind::binding_set : ChangeKind::binding_learned,
                  binding.extension, std::nullopt, std::nullopt, binding};
  if (auto ok = add_history(set, now); !ok) return ok;
  changes.push_back(std::move(set));
  return {};
}

Expected<void, TableError> AllocationTable::Batch::learn_from_hostname(const LeaseRecord& r, int64_t now,
                                                                       std::vector<TableChange>& changes) {
  const auto& rule = table_->options_.hostname_rule;
  if (!rule || r.hostname.empty() || r.state != LeaseState::active) return {};
  auto ext = rule->extension_for(r.hostname);
  if (!ext) return {};
  ClientRef client{r.mac.empty() ? ClientRef::Kind::client_id : ClientRef::Kind::mac,
                   r.mac.empty() ? r.client_id : r.mac};
  auto current = get_binding(txn_, table_->dbs_.bindings, *ext);
  if (!current) return Unexpected(current.error());
  if (*current && (*current)->client == client) return {};
  // A hostname never takes an extension bound to another client (issue 11 §4:
  // any LAN host can send `ext-4106`); the claim is kept for the admin.
  if (*current) return record_conflict(**current, client, r, now, changes);
  // A client an admin bound to another extension keeps that binding.
  auto other = get_string(txn_, table_->dbs_.bound, client.index_key());
  if (!other) return Unexpected(other.error());
  if (*other) {
    auto other_binding = get_binding(txn_, table_->dbs_.bindings, **other);
    if (!other_binding) return Unexpected(other_binding.error());
    if (*other_binding && (*other_binding)->origin == BindingOrigin::admin) return {};
  }
  // Both reads above are what set_binding would repeat.
  return set_binding(ExtensionBinding{*ext, client, BindingOrigin::hostname_rule, now}, *current, *other, now,
                     changes);
}

Expected<void, TableError> AllocationTable::Batch::record_conflict(const ExtensionBinding& current,
                                                                   const ClientRef& claimant, const LeaseRecord& r,
                                                                   int64_t now, std::vector<TableChange>& changes) {
  const Databases& db = table_->dbs_;
  const std::string prefix = history_prefix(current.extension);
  const std::string key = prefix + claimant.index_key();
  auto stored = txn_.get(db.conflicts, as_bytes(key));
  if (!stored) return store_fail(stored.error());
  if (*stored) {  // a claim seen before: counted, not reported again
    auto c = decode_conflict(as_bytes(key), **stored);
    if (!c) return corrupted();
    c->last_seen = now;
    c->address = r.address;
    ++c->attempts;
    if (auto ok = txn_.put(db.conflicts, as_bytes(key), encode_conflict(*c)); !ok) return store_fail(ok.error());
    return {};
  }
  size_t kept = 0;
  auto scanned = txn_.scan_prefix(db.conflicts, as_bytes(prefix), {}, [&](ByteView, ByteView) {
    ++kept;
    return true;
  });
  if (!scanned) return store_fail(scanned.error());
  if (kept < kMaxConflictsPerExtension) {
    BindingConflict c{current.extension, claimant, r.hostname, r.address, now, now, 1};
    if (auto ok = txn_.put(db.conflicts, as_bytes(key), encode_conflict(c)); !ok) return store_fail(ok.error());
  }
  TableChange change{ChangeKind::binding_conflict, current.extension, r, std::nullopt, current};
  if (auto ok = add_history(change, now); !ok) return ok;
  changes.push_back(std::move(change));
  return {};
}

Expected<void, TableError> AllocationTable::Batch::clear_conflicts(std::string_view extension) {
  const std::string prefix = history_prefix(extension);
  std::vector<std::string> keys;
  auto ok = txn_.scan_prefix(table_->dbs_.conflicts, as_bytes(prefix), {}, [&](ByteView k, ByteView) {
    keys.emplace_back(as_chars(k));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  for (const auto& key : keys)
    if (auto erased = txn_.erase(table_->dbs_.conflicts, as_bytes(key)); !erased) return store_fail(erased.error());
  return {};
}

Expected<ApplyResult, TableError> AllocationTable::Batch::apply(const LeaseEvent& event, int64_t now) {
  if (auto ok = validate(event); !ok) return Unexpected(ok.error());
  ApplyResult result;
  const std::string key = lease_key(event);
  auto existing = get_record(txn_, table_->dbs_.leases, key);
  if (!existing) return Unexpected(existing.error());

  LeaseRecord next;
  const bool ends = ends_lease(event.action);
  if (*existing) {
    const LeaseRecord& r = **existing;
    Order order = compare(event, r);
    if (order == Order::older) {
      result.outcome = ApplyOutcome::stale;
      return result;
    }
    if (order == Order::duplicate) {
      result.outcome = ApplyOutcome::duplicate;
      // A repeat may still carry what an earlier report lacked.
      if (!ends && r.hostname.empty() && !event.hostname.empty()) {
        LeaseRecord filled = r;
        filled.hostname = event.hostname;
        if (auto ok = store(filled, r); !ok) return Unexpected(ok.error());
        if (auto ok = learn_from_hostname(filled, now, result.changes); !ok) return Unexpected(ok.error());
      }
      return result;
    }
    next = r;
  }
  next.key = key;
  next.state = state_for(event.action);
  next.source = event.source;
  next.address = event.address;
  if (!event.mac.empty()) next.mac = event.mac;
  if (!event.client_id.empty()) next.client_id = event.client_id;
  if (!event.hostname.empty()) next.hostname = event.hostname;
  if (!event.server.empty()) next.server = event.server;
  next.expires = event.expires;
  if (ends && *existing && event.expires == LeaseEvent::kUnknownExpiry) next.expires = (*existing)->expires;
  next.reported_at = event.reported_at;
  // Without an expiry, a lease lives assumed_lease_seconds from its report; a
  // renewal of a live lease at the same address keeps the length it had (one the
  // lease file told, when the hook does not pass the lease time).
  int64_t assumed = table_->options_.assumed_lease_seconds;
  if (!ends && *existing && (*existing)->state == LeaseState::active && (*existing)->address == event.address &&
      (*existing)->live_until != LeaseEvent::kInfinite && (*existing)->reported_at > 0 &&
      (*existing)->live_until > (*existing)->reported_at)
    assumed = (*existing)->live_until - (*existing)->reported_at;
  next.live_until = live_until_of(next.expires, event.reported_at, assumed);
  next.updated_at = now;
  if (auto ok = store(next, *existing); !ok) return Unexpected(ok.error());

  std::optional<ChangeKind> kind;
  std::optional<proto::SocketAddress> previous;
  const bool was_active = *existing && (*existing)->state == LeaseState::active;
  if (ends) {
    if (was_active) kind = ChangeKind::lease_ended;
  } else if (!was_active) {
    kind = ChangeKind::lease_granted;
  } else if ((*existing)->address != next.address) {
    kind = ChangeKind::lease_moved;
    previous = (*existing)->address;
  } else if ((*existing)->expires != next.expires || (*existing)->hostname != next.hostname) {
    kind = ChangeKind::lease_renewed;
  }
  if (!ends) {
    if (auto ok = learn_from_hostname(next, now, result.changes); !ok) return Unexpected(ok.error());
  }
  if (kind) {
    auto ext = extension_of(next);
    if (!ext) return Unexpected(ext.error());
    TableChange change{*kind, ext->value_or(""), next, previous, std::nullopt};
    if (auto ok = add_history(change, now); !ok) return Unexpected(ok.error());
    result.changes.insert(result.changes.begin(), std::move(change));
  }
  return result;
}

Expected<std::vector<TableChange>, TableError> AllocationTable::Batch::bind(std::string_view extension,
                                                                            const ClientRef& client, int64_t now) {
  if (auto ok = validate_extension(extension); !ok) return Unexpected(ok.error());
  if (client.value.empty()) return fail(TableErrc::invalid_argument, "empty client");
  std::vector<TableChange> changes;
  auto current = get_binding(txn_, table_->dbs_.bindings, extension);
  if (!current) return Unexpected(current.error());
  if (auto ok = clear_conflicts(extension); !ok) return Unexpected(ok.error());  // the admin decided
  if (*current && (*current)->client == client && (*current)->origin == BindingOrigin::admin) return changes;
  if (auto ok = set_binding(ExtensionBinding{std::string(extension), client, BindingOrigin::admin, now}, now, changes); !ok)
    return Unexpected(ok.error());
  return changes;
}

Expected<std::vector<TableChange>, TableError> AllocationTable::Batch::unbind(std::string_view extension, int64_t now) {
  if (auto ok = validate_extension(extension); !ok) return Unexpected(ok.error());
  auto current = get_binding(txn_, table_->dbs_.bindings, extension);
  if (!current) return Unexpected(current.error());
  if (!*current) return fail(TableErrc::not_found, "extension has no binding");
  if (auto ok = txn_.erase(table_->dbs_.bindings, as_bytes(extension)); !ok) return store_fail(ok.error());
  if (auto ok = txn_.erase(table_->dbs_.bound, as_bytes((*current)->client.index_key())); !ok) return store_fail(ok.error());
  std::vector<TableChange> changes;
  TableChange removed{ChangeKind::binding_removed, std::string(extension), std::nullopt, std::nullopt, **current};
  if (auto ok = add_history(removed, now); !ok) return Unexpected(ok.error());
  changes.push_back(std::move(removed));
  return changes;
}

Expected<std::vector<TableChange>, TableError> AllocationTable::Batch::expire_stale(int64_t now) {
  std::vector<std::string> due;
  auto ok = txn_.scan(table_->dbs_.deadlines, {}, [&](ByteView key, ByteView) {
    if (key.size() < 8 || static_cast<int64_t>(load_be64(key.data())) > now) return false;
    due.emplace_back(as_chars(key.subspan(8)));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  std::vector<TableChange> changes;
  for (const std::string& key : due) {
    auto rec = get_record(txn_, table_->dbs_.leases, key);
    if (!rec) return Unexpected(rec.error());
    if (!*rec) continue;
    const LeaseRecord& r = **rec;
    if (r.state == LeaseState::active) {
      if (r.live_until > now) continue;
      LeaseRecord next = r;
      next.state = LeaseState::expired;
      next.updated_at = now;
      if (auto s = store(next, r); !s) return Unexpected(s.error());
      auto ext = extension_of(next);
      if (!ext) return Unexpected(ext.error());
      TableChange change{ChangeKind::lease_expired, ext->value_or(""), next, std::nullopt, std::nullopt};
      if (auto h = add_history(change, now); !h) return Unexpected(h.error());
      changes.push_back(std::move(change));
    } else if (deadline_of(r) <= now) {
      if (auto e = erase(r); !e) return Unexpected(e.error());
      changes.push_back(TableChange{ChangeKind::lease_purged, "", r, std::nullopt, std::nullopt});
    }
  }
  return changes;
}

Expected<SyncResult, TableError> AllocationTable::Batch::sync(const LeaseFileSnapshot& snapshot, int64_t now) {
  SyncResult result;
  auto bulk = bulk_load(snapshot, now, result);
  if (!bulk) return Unexpected(bulk.error());
  if (*bulk) return result;
  if (auto ok = sync_leases(snapshot, 0, snapshot.leases.size(), now, result); !ok) return Unexpected(ok.error());
  if (auto ok = sync_absent(snapshot, now, result); !ok) return Unexpected(ok.error());
  return result;
}

Expected<void, TableError> AllocationTable::Batch::sync_leases(const LeaseFileSnapshot& snapshot, size_t first,
                                                               size_t end, int64_t now, SyncResult& result) {
  end = std::min(end, snapshot.leases.size());
  for (size_t i = first; i < end; ++i) {
    const LeaseEvent& event = snapshot.leases[i];
    if (!validate(event)) continue;  // parsers never produce these
    auto applied = apply(event, now);
    if (!applied) return Unexpected(applied.error());
    switch (applied->outcome) {
      case ApplyOutcome::applied: ++result.applied; break;
      case ApplyOutcome::duplicate: ++result.duplicates; break;
      case ApplyOutcome::stale: ++result.stale; break;
    }
    if (result.list_changes)
      for (auto& c : applied->changes) result.changes.push_back(std::move(c));
  }
  return {};
}

Expected<void, TableError> AllocationTable::Batch::sync_absent(const LeaseFileSnapshot& snapshot, int64_t now,
                                                               SyncResult& result) {
  if (snapshot.bad_records != 0) return {};
  result.absent_checked = true;
  // The file's lease keys in one buffer, sorted: the scan below visits the
  // table's keys in the same byte order (LMDB's default), so one merge pass
  // finds the absent ones, without a hash set of 100,000 heap strings.
  std::string key_bytes;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // offset, length in key_bytes
  spans.reserve(snapshot.leases.size());
  for (const LeaseEvent& event : snapshot.leases) {
    if (!validate(event)) continue;
    size_t at = key_bytes.size();
    append_lease_key(event, key_bytes);
    spans.emplace_back(static_cast<uint32_t>(at), static_cast<uint32_t>(key_bytes.size() - at));
  }
  auto view = [&](const std::pair<uint32_t, uint32_t>& span) {
    return std::string_view(key_bytes).substr(span.first, span.second);
  };
  std::sort(spans.begin(), spans.end(), [&](const auto& x, const auto& y) { return view(x) < view(y); });
  size_t next_present = 0;
  std::vector<LeaseRecord> absent;
  bool bad = false;
  auto ok = txn_.scan(table_->dbs_.leases, {}, [&](ByteView key, ByteView value) {
    const std::string_view table_key = as_chars(key);
    while (next_present < spans.size() && view(spans[next_present]) < table_key) ++next_present;
    if (next_present < spans.size() && view(spans[next_present]) == table_key) return true;
    auto rec = decode_record(value);
    if (!rec) {
      bad = true;
      return false;
    }
    if (rec->source == snapshot.source && rec->state == LeaseState::active && rec->reported_at < snapshot.taken_at)
      absent.push_back(std::move(*rec));
    return true;
  });
  if (!ok) return store_fail(ok.error());
  if (bad) return corrupted();
  for (const LeaseRecord& r : absent) {
    LeaseRecord next = r;
    next.state = LeaseState::removed;
    next.reported_at = snapshot.taken_at;
    next.updated_at = now;
    if (auto s = store(next, r); !s) return Unexpected(s.error());
    auto ext = extension_of(next);
    if (!ext) return Unexpected(ext.error());
    TableChange change{ChangeKind::lease_ended, ext->value_or(""), next, std::nullopt, std::nullopt};
    if (auto h = add_history(change, now); !h) return Unexpected(h.error());
    if (result.list_changes) result.changes.push_back(std::move(change));
    ++result.ended_absent;
  }
  return {};
}

namespace {

// The keys and values of one database, in one buffer, sorted in memory before
// they are appended in order (MDB_APPEND: no descent, no comparison per level,
// pages filled full).
class SortedLoad {
 public:
  void reserve(size_t entries, size_t bytes) {
    entries_.reserve(entries);
    bytes_.reserve(bytes);
  }
  // An entry is start(), the key's bytes (end_head() after the part that
  // unique_heads() compares), end_key(), the value's, end_value().
  void start() {
    key_at_ = bytes_.size();
    head_at_ = 0;
  }
  void end_head() { head_at_ = bytes_.size(); }
  void end_key() { value_at_ = bytes_.size(); }
  void end_value() {
    const size_t head_end = head_at_ != 0 ? head_at_ : value_at_;
    entries_.push_back(Entry{0, static_cast<uint32_t>(key_at_), static_cast<uint32_t>(value_at_ - key_at_),
                             static_cast<uint32_t>(head_end - key_at_), static_cast<uint32_t>(value_at_),
                             static_cast<uint32_t>(bytes_.size() - value_at_)});
  }
  void add(std::string_view s) {
    auto b = as_bytes(s);
    bytes_.insert(bytes_.end(), b.begin(), b.end());
  }
  void add(char c) { bytes_.push_back(static_cast<std::byte>(c)); }
  Bytes& bytes() { return bytes_; }

  // LMDB's default order: bytes compared unsigned, a prefix first. Keys of
  // one database share long prefixes ("4|m=02:00:00:"), so each entry first
  // gets the 8 bytes after the prefix common to all, big-endian and
  // zero-padded: a smaller probe means a smaller key; equal probes compare
  // the keys.
  void sort() {
    if (entries_.empty()) return;
    const std::string_view first = key(entries_[0]);
    size_t common = first.size();
    for (const Entry& e : entries_) {
      const std::string_view k = key(e);
      size_t n = 0;
      const size_t limit = std::min(common, k.size());
      while (n < limit && k[n] == first[n]) ++n;
      common = n;
    }
    for (Entry& e : entries_) {
      const std::string_view rest = key(e).substr(common);
      uint64_t probe = 0;
      for (size_t i = 0; i < 8; ++i)
        probe = (probe << 8) | (i < rest.size() ? static_cast<unsigned char>(rest[i]) : 0u);
      e.probe = probe;
    }
    std::sort(entries_.begin(), entries_.end(), [this](const Entry& x, const Entry& y) {
      return x.probe != y.probe ? x.probe < y.probe : key(x) < key(y);
    });
  }
  // After sort(): whether every key is there once.
  bool unique_keys() const {
    for (size_t i = 1; i < entries_.size(); ++i)
      if (entries_[i - 1].probe == entries_[i].probe && key(entries_[i - 1]) == key(entries_[i])) return false;
    return true;
  }
  // After sort(): whether no two keys share their heads (end_head()).
  bool unique_heads() const {
    for (size_t i = 1; i < entries_.size(); ++i)
      if (head(entries_[i - 1]) == head(entries_[i])) return false;
    return true;
  }
  Expected<void, storage::StoreError> append_to(Transaction& txn, storage::DatabaseHandle db) const {
    return txn.append_all(db, entries_.size(), [this](size_t i) {
      const Entry& e = entries_[i];
      return std::pair{ByteView(bytes_.data() + e.key_at, e.key_len), ByteView(bytes_.data() + e.value_at, e.value_len)};
    });
  }

 private:
  struct Entry {
    uint64_t probe;
    uint32_t key_at, key_len, head_len, value_at, value_len;
  };
  std::string_view key(const Entry& e) const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()) + e.key_at, e.key_len);
  }
  std::string_view head(const Entry& e) const { return key(e).substr(0, e.head_len); }

  Bytes bytes_;
  std::vector<Entry> entries_;
  size_t key_at_ = 0, head_at_ = 0, value_at_ = 0;
};

void add_be64(SortedLoad& load, uint64_t v) {
  char b[8];
  store_be64(reinterpret_cast<std::byte*>(b), v);
  load.add(std::string_view(b, 8));
}

}  // namespace

Expected<bool, TableError> AllocationTable::Batch::bulk_load(const LeaseFileSnapshot& snapshot, int64_t now,
                                                             SyncResult& result) {
  const Databases& db = table_->dbs_;
  for (storage::DatabaseHandle h :
       {db.leases, db.by_client, db.by_address, db.deadlines, db.bindings, db.bound, db.history, db.conflicts}) {
    auto entries = txn_.count(h);
    if (!entries) return store_fail(entries.error());
    if (*entries != 0) return false;
  }
  // The data must be free of the cases where one lease's apply reads what an
  // earlier one wrote: two records of one lease, one client (MAC or
  // client-id) in two leases, one address in two live leases, one extension
  // learned twice. Such a file takes the per-lease path.
  const TableOptions& options = table_->options_;
  const size_t n = snapshot.leases.size();
  SortedLoad leases, by_client, by_address, deadlines, bindings, bound, history;
  leases.reserve(n, n * 128);
  by_client.reserve(2 * n, n * 64);
  by_address.reserve(n, n * 40);
  deadlines.reserve(n, n * 40);
  bindings.reserve(n, n * 48);
  bound.reserve(n, n * 32);
  history.reserve(2 * n, n * 128);
  std::optional<uint64_t> sequence;
  std::string key, client;  // reused: no heap string per lease
  size_t applied = 0;
  std::vector<TableChange> changes;
  for (const LeaseEvent& e : snapshot.leases) {
    if (!validate(e)) continue;
    ++applied;
    key.clear();
    append_lease_key(e, key);
    const LeaseState state = state_for(e.action);
    const bool active = state == LeaseState::active;
    const int64_t live_until = live_until_of(e.expires, e.reported_at, options.assumed_lease_seconds);
    const RecordParts record{state, e.source, e.address, e.expires, live_until, e.reported_at, now,
                             key,   e.mac,    e.client_id, e.hostname, e.server};
    leases.start();
    leases.add(key);
    leases.end_key();
    Writer record_writer(leases.bytes());
    write_record(record_writer, record);
    leases.end_value();

    if (const int64_t deadline = deadline_for(state, live_until, now, options.tombstone_retention);
        deadline != LeaseEvent::kInfinite) {
      deadlines.start();
      add_be64(deadlines, static_cast<uint64_t>(deadline));
      deadlines.add(key);
      deadlines.end_key();
      deadlines.end_value();
    }
    for (const auto& [prefix, value] : {std::pair<std::string_view, std::string_view>{"m=", e.mac}, {"c=", e.client_id}}) {
      if (value.empty()) continue;
      by_client.start();
      by_client.add(prefix);
      by_client.add(value);
      by_client.end_head();
      by_client.add('\0');
      by_client.add(key);
      by_client.end_key();
      by_client.end_value();
    }
    if (active) {
      by_address.start();
      by_address.add(static_cast<char>(e.address.family));
      const size_t ip_len = e.address.family == proto::SocketAddress::Family::ipv4 ? 4 : 16;
      for (size_t i = 0; i < ip_len; ++i) by_address.add(static_cast<char>(e.address.ip[i]));
      by_address.end_key();
      by_address.add(key);
      by_address.end_value();
    }

    std::optional<std::string> ext;
    if (active && options.hostname_rule && !e.hostname.empty()) ext = options.hostname_rule->extension_for(e.hostname);
    if (ext) {
      client.assign(e.mac.empty() ? "c=" : "m=");
      client.append(e.mac.empty() ? std::string_view(e.client_id) : e.mac.view());
      bindings.start();
      bindings.add(*ext);
      bindings.end_key();
      Writer binding_writer(bindings.bytes());
      write_binding(binding_writer, BindingOrigin::hostname_rule, now, *ext, client);
      bindings.end_value();
      bound.start();
      bound.add(client);
      bound.end_key();
      bound.add(*ext);
      bound.end_value();
      if (!sequence) {
        auto stored = txn_.get(db.meta, as_bytes(kSequenceKey));
        if (!stored) return store_fail(stored.error());
        sequence = *stored && (*stored)->size() == 8 ? load_be64((*stored)->data()) : 1;
      }
      // The learned binding, then the grant: per-lease apply's two entries
      // (the oldest dropped when history_depth is 1).
      const uint64_t learned_at = (*sequence)++, granted_at = (*sequence)++;
      auto add_entry = [&](uint64_t seq, ChangeKind kind, int64_t expires, const proto::SocketAddress* address) {
        history.start();
        history.add(*ext);
        history.add('\0');
        add_be64(history, seq);
        history.end_key();
        Writer history_writer(history.bytes());
        write_history(history_writer, kind, seq, now, expires, address, client);
        history.end_value();
      };
      if (options.history_depth >= 2) add_entry(learned_at, ChangeKind::binding_learned, 0, nullptr);
      add_entry(granted_at, ChangeKind::lease_granted, e.expires, &e.address);
    }
    if (result.list_changes && active) {
      LeaseRecord r{std::string(key), state, e.source, e.address, e.mac.str(), e.client_id, e.hostname, e.server,
                    e.expires, live_until, e.reported_at, now};
      changes.push_back(TableChange{ChangeKind::lease_granted, ext.value_or(""), std::move(r), std::nullopt, std::nullopt});
      if (ext) {
        ClientRef ref{e.mac.empty() ? ClientRef::Kind::client_id : ClientRef::Kind::mac,
                      e.mac.empty() ? e.client_id : e.mac.str()};
        changes.push_back(TableChange{ChangeKind::binding_learned, *ext, std::nullopt, std::nullopt,
                                      ExtensionBinding{*ext, std::move(ref), BindingOrigin::hostname_rule, now}});
      }
    }
  }
  for (SortedLoad* load : {&leases, &by_client, &by_address, &deadlines, &bindings, &bound, &history}) load->sort();
  if (!leases.unique_keys() || !by_client.unique_heads() || !by_address.unique_keys() || !bindings.unique_keys())
    return false;
  const std::pair<SortedLoad*, storage::DatabaseHandle> loads[] = {
      {&leases, db.leases},     {&by_client, db.by_client}, {&by_address, db.by_address}, {&deadlines, db.deadlines},
      {&bindings, db.bindings}, {&bound, db.bound},         {&history, db.history}};
  for (const auto& [load, handle] : loads) {
    if (auto ok = load->append_to(txn_, handle); !ok) return store_fail(ok.error());
  }
  if (sequence) next_sequence_ = sequence;
  counted_extension_.reset();
  result.applied += applied;
  // Every lease in the table now came from this file: none is absent.
  result.absent_checked = snapshot.bad_records == 0;
  if (result.list_changes)
    for (auto& c : changes) result.changes.push_back(std::move(c));
  return true;
}

Expected<void, TableError> AllocationTable::Batch::commit() {
  if (next_sequence_) {
    std::byte next[8];
    store_be64(next, *next_sequence_);
    if (auto ok = txn_.put(table_->dbs_.meta, as_bytes(kSequenceKey), ByteView(next, 8)); !ok) return store_fail(ok.error());
  }
  if (auto ok = txn_.commit(); !ok) return store_fail(ok.error());
  return {};
}

}  // namespace tsunagu::alloc
