#include "rendezvous/card_ledger.hpp"

#include <limits>

namespace tsunagu::rendezvous {

namespace {

constexpr uint8_t record_version = 1;
constexpr size_t max_card_id_size = 64;
constexpr size_t max_password_hash_size = 512;
constexpr size_t max_note_size = 255;
constexpr std::string_view next_serial_key = "next_serial";

class RecordWriter {
 public:
  void u8(uint8_t v) { out_.push_back(std::byte(v)); }
  void u64(uint64_t v) {
    size_t at = out_.size();
    out_.resize(at + 8);
    store_be64(out_.data() + at, v);
  }
  void text8(std::string_view s) {
    u8(static_cast<uint8_t>(s.size()));
    append(s);
  }
  void text16(std::string_view s) {
    size_t at = out_.size();
    out_.resize(at + 2);
    store_be16(out_.data() + at, static_cast<uint16_t>(s.size()));
    append(s);
  }
  Bytes take() { return std::move(out_); }

 private:
  void append(std::string_view s) {
    auto b = as_bytes(s);
    out_.insert(out_.end(), b.begin(), b.end());
  }
  Bytes out_;
};

class RecordReader {
 public:
  explicit RecordReader(ByteView in) : in_(in) {}
  bool u8(uint8_t& v) {
    if (!need(1)) return false;
    v = std::to_integer<uint8_t>(in_[at_++]);
    return true;
  }
  bool u64(uint64_t& v) {
    if (!need(8)) return false;
    v = load_be64(in_.data() + at_);
    at_ += 8;
    return true;
  }
  bool i64(int64_t& v) {
    uint64_t u = 0;
    if (!u64(u) || u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    v = static_cast<int64_t>(u);
    return true;
  }
  bool text8(std::string& s, size_t max) {
    uint8_t n = 0;
    return u8(n) && n <= max && take(s, n);
  }
  bool text16(std::string& s, size_t max) {
    if (!need(2)) return false;
    size_t n = load_be16(in_.data() + at_);
    at_ += 2;
    return n <= max && take(s, n);
  }
  bool at_end() const { return at_ == in_.size(); }

 private:
  bool need(size_t n) const { return in_.size() - at_ >= n; }
  bool take(std::string& s, size_t n) {
    if (!need(n)) return false;
    s.assign(as_chars(in_.subspan(at_, n)));
    at_ += n;
    return true;
  }
  ByteView in_;
  size_t at_ = 0;
};

// A record of at most `max_size` bytes: the version byte, then what
// `read_fields` reads, then nothing more.
template <typename ReadFields>
bool read_record(ByteView bytes, size_t max_size, ReadFields read_fields) {
  if (bytes.size() > max_size) return false;
  RecordReader r(bytes);
  uint8_t version = 0;
  return r.u8(version) && version == record_version && read_fields(r) && r.at_end();
}

Bytes serial_key(uint64_t serial) {
  Bytes key(8);
  store_be64(key.data(), serial);
  return key;
}

Bytes event_key(uint64_t serial, uint64_t sequence) {
  Bytes key(16);
  store_be64(key.data(), serial);
  store_be64(key.data() + 8, sequence);
  return key;
}

std::string_view cut(std::string_view text, size_t max) { return text.substr(0, std::min(text.size(), max)); }

}  // namespace

const char* card_event_name(CardEventKind kind) {
  switch (kind) {
    case CardEventKind::issued: return "issued";
    case CardEventKind::debit: return "debit";
    case CardEventKind::top_up: return "top-up";
    case CardEventKind::revoked: return "revoked";
    case CardEventKind::password_set: return "password";
  }
  return "unknown";
}

const char* ledger_outcome_name(LedgerOutcome outcome) {
  switch (outcome) {
    case LedgerOutcome::done: return "done";
    case LedgerOutcome::exhausted: return "exhausted";
    case LedgerOutcome::no_units: return "no units";
    case LedgerOutcome::revoked: return "revoked";
    case LedgerOutcome::unknown_card: return "unknown card";
    case LedgerOutcome::already: return "already revoked";
  }
  return "unknown";
}

Bytes encode_card_account(const CardAccount& a) {
  RecordWriter w;
  w.u8(record_version);
  w.u64(a.units_issued);
  w.u64(a.units_left);
  w.u64(static_cast<uint64_t>(a.issued_at));
  w.u64(static_cast<uint64_t>(a.expires_at));
  w.u8(a.revoked ? 1 : 0);
  w.u64(static_cast<uint64_t>(a.revoked_at));
  w.u64(a.events);
  w.text8(cut(a.card_id, max_card_id_size));
  w.text16(cut(a.password_hash, max_password_hash_size));
  w.u64(static_cast<uint64_t>(a.password_set_at));
  return w.take();
}

std::optional<CardAccount> decode_card_account(ByteView bytes, uint64_t serial) {
  CardAccount a;
  a.serial = serial;
  uint8_t revoked = 0;
  bool read = read_record(bytes, max_card_account_record_size, [&](RecordReader& r) {
    return r.u64(a.units_issued) && r.u64(a.units_left) && r.i64(a.issued_at) && r.i64(a.expires_at) &&
           r.u8(revoked) && revoked <= 1 && r.i64(a.revoked_at) && r.u64(a.events) &&
           r.text8(a.card_id, max_card_id_size) && r.text16(a.password_hash, max_password_hash_size) &&
           // Records written before password_set_at ended here: -1 until
           // CardLedger::find() reads the history for it.
           (r.at_end() ? (a.password_set_at = -1, true) : (r.i64(a.password_set_at) && a.password_set_at >= 0));
  });
  if (!read) return std::nullopt;
  a.revoked = revoked == 1;
  return a;
}

Bytes encode_card_event(const CardEvent& e) {
  RecordWriter w;
  w.u8(record_version);
  w.u8(static_cast<uint8_t>(e.kind));
  w.u64(static_cast<uint64_t>(e.time));
  w.u64(e.units);
  w.u64(e.units_left);
  w.text8(cut(e.note, max_note_size));
  return w.take();
}

std::optional<CardEvent> decode_card_event(ByteView bytes, uint64_t sequence) {
  CardEvent e;
  e.sequence = sequence;
  uint8_t kind = 0;
  bool read = read_record(bytes, max_card_event_record_size, [&](RecordReader& r) {
    return r.u8(kind) && kind >= 1 && kind <= 5 && r.i64(e.time) && r.u64(e.units) && r.u64(e.units_left) &&
           r.text8(e.note, max_note_size);
  });
  if (!read) return std::nullopt;
  e.kind = static_cast<CardEventKind>(kind);
  return e;
}

Expected<CardLedger, storage::StoreError> CardLedger::open(storage::Environment& env) {
  CardLedger ledger;
  auto accounts = env.open_database("card_accounts");
  if (!accounts) return Unexpected(accounts.error());
  auto history = env.open_database("card_history");
  if (!history) return Unexpected(history.error());
  auto meta = env.open_database("card_meta");
  if (!meta) return Unexpected(meta.error());
  ledger.accounts_ = *accounts;
  ledger.history_ = *history;
  ledger.meta_ = *meta;
  return ledger;
}

Expected<uint64_t, storage::StoreError> CardLedger::allocate_serials(Transaction& txn, uint64_t count) {
  auto stored = txn.get(meta_, as_bytes(next_serial_key));
  if (!stored) return Unexpected(stored.error());
  uint64_t first = 1;
  if (*stored) {
    if ((*stored)->size() != 8) return Unexpected(StoreError{storage::StoreErrc::corrupted, 0, "card_meta next_serial"});
    first = load_be64((*stored)->data());
  }
  Bytes next(8);
  store_be64(next.data(), first + count);
  auto put = txn.put(meta_, as_bytes(next_serial_key), next);
  if (!put) return Unexpected(put.error());
  return first;
}

Expected<bool, storage::StoreError> CardLedger::add(Transaction& txn, CardAccount account) {
  account.units_left = account.units_issued;
  account.revoked = false;
  account.revoked_at = 0;
  account.events = 1;
  auto inserted = txn.insert(accounts_, serial_key(account.serial), encode_card_account(account));
  if (!inserted) return Unexpected(inserted.error());
  if (!*inserted) return false;
  CardEvent event{0, CardEventKind::issued, account.issued_at, account.units_issued, account.units_left, ""};
  auto logged = txn.put(history_, event_key(account.serial, 0), encode_card_event(event));
  if (!logged) return Unexpected(logged.error());
  return true;
}

Expected<std::optional<CardAccount>, storage::StoreError> CardLedger::find(Transaction& txn, uint64_t serial) {
  auto stored = txn.get(accounts_, serial_key(serial));
  if (!stored) return Unexpected(stored.error());
  if (!*stored) return std::optional<CardAccount>();
  auto account = decode_card_account(**stored, serial);
  if (!account) return Unexpected(StoreError{storage::StoreErrc::corrupted, 0, "card account record"});
  if (account->password_set_at < 0) {
    // A record from before the field: the newest password event says it (the
    // next write of the record keeps it).
    account->password_set_at = 0;
    auto events = history(txn, serial, 0, account->events);
    if (!events) return Unexpected(events.error());
    for (const auto& event : *events)
      if (event.kind == CardEventKind::password_set) account->password_set_at = event.time;
  }
  return account;
}

Expected<void, storage::StoreError> CardLedger::write(Transaction& txn, CardAccount& account, CardEventKind kind,
                                                      int64_t now, uint64_t units, std::string_view note) {
  CardEvent event{account.events, kind, now, units, account.units_left, std::string(cut(note, max_note_size))};
  auto logged = txn.put(history_, event_key(account.serial, account.events), encode_card_event(event));
  if (!logged) return logged;
  ++account.events;
  return txn.put(accounts_, serial_key(account.serial), encode_card_account(account));
}

Expected<LedgerResult, storage::StoreError> CardLedger::debit(Transaction& txn, uint64_t serial, uint64_t units,
                                                              int64_t now, std::string_view note) {
  auto found = find(txn, serial);
  if (!found) return Unexpected(found.error());
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  CardAccount& account = **found;
  if (account.revoked) return LedgerResult{LedgerOutcome::revoked, 0, account.units_left};
  if (account.units_left == 0) return LedgerResult{LedgerOutcome::no_units, 0, 0};
  uint64_t taken = std::min(units, account.units_left);
  account.units_left -= taken;
  auto written = write(txn, account, CardEventKind::debit, now, taken, note);
  if (!written) return Unexpected(written.error());
  return LedgerResult{taken == units ? LedgerOutcome::done : LedgerOutcome::exhausted, taken, account.units_left};
}

Expected<LedgerResult, storage::StoreError> CardLedger::top_up(Transaction& txn, uint64_t serial, uint64_t units,
                                                               int64_t now, std::string_view note) {
  auto found = find(txn, serial);
  if (!found) return Unexpected(found.error());
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  CardAccount& account = **found;
  if (account.revoked) return LedgerResult{LedgerOutcome::revoked, 0, account.units_left};
  constexpr uint64_t max_units = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t added = std::min(units, max_units - account.units_left);
  account.units_left += added;
  auto written = write(txn, account, CardEventKind::top_up, now, added, note);
  if (!written) return Unexpected(written.error());
  return LedgerResult{LedgerOutcome::done, added, account.units_left};
}

Expected<LedgerResult, storage::StoreError> CardLedger::revoke(Transaction& txn, uint64_t serial, int64_t now,
                                                               std::string_view note) {
  auto found = find(txn, serial);
  if (!found) return Unexpected(found.error());
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  CardAccount& account = **found;
  if (account.revoked) return LedgerResult{LedgerOutcome::already, 0, account.units_left};
  account.revoked = true;
  account.revoked_at = now;
  auto written = write(txn, account, CardEventKind::revoked, now, 0, note);
  if (!written) return Unexpected(written.error());
  return LedgerResult{LedgerOutcome::done, 0, account.units_left};
}

Expected<LedgerResult, storage::StoreError> CardLedger::set_password(Transaction& txn, uint64_t serial,
                                                                     std::string password_hash, int64_t now,
                                                                     std::string_view note) {
  auto found = find(txn, serial);
  if (!found) return Unexpected(found.error());
  if (!*found) return LedgerResult{LedgerOutcome::unknown_card, 0, 0};
  CardAccount& account = **found;
  if (account.revoked) return LedgerResult{LedgerOutcome::revoked, 0, account.units_left};
  account.password_hash = std::move(password_hash);
  account.password_set_at = now;
  auto written = write(txn, account, CardEventKind::password_set, now, 0, note);
  if (!written) return Unexpected(written.error());
  return LedgerResult{LedgerOutcome::done, 0, account.units_left};
}

Expected<std::vector<CardEvent>, storage::StoreError> CardLedger::history(Transaction& txn, uint64_t serial,
                                                                          uint64_t from, size_t limit) {
  std::vector<CardEvent> out;
  bool corrupt = false;
  auto scanned = txn.scan_prefix(history_, serial_key(serial), event_key(serial, from), [&](ByteView key, ByteView value) {
    if (key.size() != 16 || out.size() >= limit) return false;
    auto event = decode_card_event(value, load_be64(key.data() + 8));
    if (!event) {
      corrupt = true;
      return false;
    }
    out.push_back(std::move(*event));
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (corrupt) return Unexpected(StoreError{storage::StoreErrc::corrupted, 0, "card event record"});
  return out;
}

Expected<std::vector<uint64_t>, storage::StoreError> CardLedger::revoked_serials(Transaction& txn) {
  std::vector<uint64_t> out;
  bool corrupt = false;
  auto scanned = txn.scan(accounts_, {}, [&](ByteView key, ByteView value) {
    if (key.size() != 8) return true;
    auto account = decode_card_account(value, load_be64(key.data()));
    if (!account) {
      corrupt = true;
      return false;
    }
    if (account->revoked) out.push_back(account->serial);
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (corrupt) return Unexpected(StoreError{storage::StoreErrc::corrupted, 0, "card account record"});
  return out;
}

}  // namespace tsunagu::rendezvous
