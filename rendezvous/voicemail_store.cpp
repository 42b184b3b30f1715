#include "rendezvous/voicemail_store.hpp"

namespace tsunagu::rendezvous {
namespace {

constexpr std::byte record_version{1};
constexpr std::string_view next_id_key = "next_id";

Bytes mailbox_key(std::string_view mailbox, uint64_t id) {
  Bytes key(mailbox.size() + 1 + 8);
  auto b = as_bytes(mailbox);
  std::copy(b.begin(), b.end(), key.begin());
  key[mailbox.size()] = std::byte{0};
  store_be64(key.data() + mailbox.size() + 1, id);
  return key;
}

// The mailbox a key belongs to when it is a well-formed key of `mailbox`.
bool in_mailbox(ByteView key, std::string_view mailbox) {
  return key.size() == mailbox.size() + 9 && as_chars(key.first(mailbox.size())) == mailbox &&
         key[mailbox.size()] == std::byte{0};
}

storage::StoreError corrupt(std::string_view what) {
  return storage::StoreError{storage::StoreErrc::corrupted, 0, "unreadable voicemail record in " + std::string(what)};
}

}  // namespace

Bytes encode_voicemail_record(const proto::VoicemailEntry& entry) {
  Bytes body = proto::encode_voicemail_entry(entry);
  if (body.empty()) return {};
  Bytes out;
  out.reserve(body.size() + 1);
  out.push_back(record_version);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::optional<proto::VoicemailEntry> decode_voicemail_record(ByteView bytes) {
  if (bytes.empty() || bytes.size() > max_voicemail_record_size || bytes[0] != record_version) return std::nullopt;
  return proto::decode_voicemail_entry(bytes.subspan(1));
}

Expected<VoicemailStore, storage::StoreError> VoicemailStore::open(storage::Environment& env) {
  VoicemailStore store;
  auto headers = env.open_database("voicemail");
  if (!headers) return Unexpected(headers.error());
  auto data = env.open_database("voicemail_data");
  if (!data) return Unexpected(data.error());
  auto meta = env.open_database("voicemail_meta");
  if (!meta) return Unexpected(meta.error());
  store.headers_ = *headers;
  store.data_ = *data;
  store.meta_ = *meta;
  return store;
}

Expected<VoicemailStore::Usage, storage::StoreError> VoicemailStore::usage(Transaction& txn, std::string_view mailbox) {
  Usage usage;
  bool bad = false;
  auto scanned = txn.scan(headers_, mailbox_key(mailbox, 0), [&](ByteView key, ByteView value) {
    if (!in_mailbox(key, mailbox)) return false;
    auto entry = decode_voicemail_record(value);
    if (!entry) return !(bad = true);
    ++usage.messages;
    usage.bytes += entry->size;
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (bad) return Unexpected(corrupt(mailbox));
  return usage;
}

Expected<VoicemailStore::Totals, storage::StoreError> VoicemailStore::totals(Transaction& txn,
                                                                           std::string_view domain) {
  Totals totals;
  bool bad = false;
  std::string suffix = domain.empty() ? std::string() : "@" + std::string(domain);
  auto scanned = txn.scan(headers_, Bytes{}, [&](ByteView key, ByteView value) {
    auto entry = decode_voicemail_record(value);
    if (key.size() < 9 || !entry) return !(bad = true);
    ++totals.all.messages;
    totals.all.bytes += entry->size;
    std::string_view mailbox = as_chars(key.first(key.size() - 9));
    if (!suffix.empty() && mailbox.ends_with(suffix)) {
      ++totals.domain.messages;
      totals.domain.bytes += entry->size;
    }
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (bad) return Unexpected(corrupt("the voicemail store"));
  return totals;
}

Expected<std::vector<proto::VoicemailEntry>, storage::StoreError> VoicemailStore::list(Transaction& txn,
                                                                                       std::string_view mailbox,
                                                                                       uint64_t after, size_t limit) {
  std::vector<proto::VoicemailEntry> out;
  bool bad = false;
  if (after == UINT64_MAX || limit == 0) return out;
  auto scanned = txn.scan(headers_, mailbox_key(mailbox, after + 1), [&](ByteView key, ByteView value) {
    if (!in_mailbox(key, mailbox)) return false;
    auto entry = decode_voicemail_record(value);
    if (!entry) return !(bad = true);
    out.push_back(std::move(*entry));
    return out.size() < limit;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (bad) return Unexpected(corrupt(mailbox));
  return out;
}

Expected<uint64_t, storage::StoreError> VoicemailStore::add(Transaction& txn, std::string_view mailbox,
                                                            std::string_view caller, uint64_t time, ByteView data) {
  uint64_t id = 1;
  auto stored = txn.get(meta_, as_bytes(next_id_key));
  if (!stored) return Unexpected(stored.error());
  if (stored->has_value()) {
    if ((*stored)->size() != 8) return Unexpected(corrupt("voicemail_meta"));
    id = load_be64((*stored)->data());
  }
  std::byte next[8];
  store_be64(next, id + 1);
  if (auto put = txn.put(meta_, as_bytes(next_id_key), next); !put) return Unexpected(put.error());
  proto::VoicemailEntry entry{id, time, data.size(), std::string(caller)};
  Bytes record = encode_voicemail_record(entry);
  if (record.empty()) return Unexpected(storage::StoreError{storage::StoreErrc::other, 0, "voicemail caller ID too long"});
  Bytes key = mailbox_key(mailbox, id);
  if (auto put = txn.put(headers_, key, record); !put) return Unexpected(put.error());
  if (auto put = txn.put(data_, key, data); !put) return Unexpected(put.error());
  return id;
}

Expected<std::optional<proto::VoicemailEntry>, storage::StoreError> VoicemailStore::find(Transaction& txn,
                                                                                         std::string_view mailbox,
                                                                                         uint64_t id) {
  auto raw = txn.get(headers_, mailbox_key(mailbox, id));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<proto::VoicemailEntry>{};
  auto entry = decode_voicemail_record(**raw);
  if (!entry) return Unexpected(corrupt(mailbox));
  return std::optional<proto::VoicemailEntry>{std::move(*entry)};
}

Expected<std::optional<ByteView>, storage::StoreError> VoicemailStore::read(Transaction& txn, std::string_view mailbox,
                                                                            uint64_t id, uint64_t offset, size_t max) {
  auto raw = txn.get(data_, mailbox_key(mailbox, id));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<ByteView>{};
  ByteView all = **raw;
  if (offset >= all.size()) return std::optional<ByteView>{ByteView{}};
  return std::optional<ByteView>{all.subspan(offset, std::min<uint64_t>(max, all.size() - offset))};
}

Expected<bool, storage::StoreError> VoicemailStore::remove(Transaction& txn, std::string_view mailbox, uint64_t id) {
  Bytes key = mailbox_key(mailbox, id);
  auto removed = txn.erase(headers_, key);
  if (!removed) return removed;
  if (auto data = txn.erase(data_, key); !data) return Unexpected(data.error());
  return removed;
}

Expected<size_t, storage::StoreError> VoicemailStore::expire(Transaction& txn, uint64_t older_than, size_t max) {
  std::vector<Bytes> old;
  auto scanned = txn.scan(headers_, ByteView{}, [&](ByteView key, ByteView value) {
    auto entry = decode_voicemail_record(value);
    if (entry && entry->time < older_than) old.emplace_back(key.begin(), key.end());
    return old.size() < max;
  });
  if (!scanned) return Unexpected(scanned.error());
  return erase_all(txn, old);
}

Expected<size_t, storage::StoreError> VoicemailStore::remove_mailbox(Transaction& txn, std::string_view mailbox) {
  std::vector<Bytes> keys;
  auto scanned = txn.scan(headers_, mailbox_key(mailbox, 0), [&](ByteView key, ByteView) {
    if (!in_mailbox(key, mailbox)) return false;
    keys.emplace_back(key.begin(), key.end());
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  return erase_all(txn, keys);
}

Expected<size_t, storage::StoreError> VoicemailStore::remove_mailboxes_inside(Transaction& txn,
                                                                             std::string_view route) {
  bool prefix = route.starts_with('+');
  std::string suffix = "@" + std::string(route);
  std::vector<Bytes> keys;
  auto scanned = txn.scan(headers_, ByteView{}, [&](ByteView key, ByteView) {
    if (key.size() < 9) return true;
    std::string_view mailbox = as_chars(key.first(key.size() - 9));
    bool inside = prefix ? mailbox.starts_with(route) && mailbox.find('@') == std::string_view::npos
                         : mailbox.ends_with(suffix);
    if (inside) keys.emplace_back(key.begin(), key.end());
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  return erase_all(txn, keys);
}

Expected<size_t, storage::StoreError> VoicemailStore::erase_all(Transaction& txn, const std::vector<Bytes>& keys) {
  for (const auto& key : keys) {
    if (auto e = txn.erase(headers_, key); !e) return Unexpected(e.error());
    if (auto e = txn.erase(data_, key); !e) return Unexpected(e.error());
  }
  return keys.size();
}

}  // namespace tsunagu::rendezvous
