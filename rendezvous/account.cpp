#include "rendezvous/account.hpp"

#include <algorithm>
#include <cstring>

#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {
namespace {

constexpr std::byte record_version{1};

enum class Tag : uint8_t {
  user_id = 1, password_hash, display_name, phone, category, publish, services, static_address, created_at, generation, presence_visibility, addresses_shown, verified, contact, admin,
  login_time = 32, login_reported, login_observed,
};

class RecordWriter {
 public:
  // One allocation for a login record (56 bytes with one reported address)
  // and most accounts, rather than one per doubling: a presence login writes one.
  RecordWriter() {
    bytes_.reserve(64);
    bytes_.push_back(record_version);
  }
  void field(Tag tag, ByteView value) {
    bytes_.push_back(std::byte(static_cast<uint8_t>(tag)));
    size_t at = bytes_.size();
    bytes_.resize(at + 2);
    store_be16(bytes_.data() + at, static_cast<uint16_t>(value.size()));
    bytes_.insert(bytes_.end(), value.begin(), value.end());
  }
  void text(Tag tag, const std::string& value) {
    if (!value.empty()) field(tag, as_bytes(value));
  }
  void u64(Tag tag, uint64_t value) {
    std::byte raw[8];
    store_be64(raw, value);
    field(tag, raw);
  }
  void address(Tag tag, const proto::SocketAddress& a) {
    std::byte raw[19];
    raw[0] = std::byte(static_cast<uint8_t>(a.family));
    store_be16(raw + 1, a.port);
    std::memcpy(raw + 3, a.ip.data(), 16);
    field(tag, raw);
  }
  Bytes take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

// Visits each field; false when the record is malformed.
template <class Visit>
bool read_fields(ByteView bytes, Visit&& visit) {
  if (bytes.empty() || bytes.size() > max_record_size || bytes[0] != record_version) return false;
  size_t at = 1;
  while (at < bytes.size()) {
    if (bytes.size() - at < 3) return false;
    auto tag = static_cast<Tag>(std::to_integer<uint8_t>(bytes[at]));
    size_t length = load_be16(bytes.data() + at + 1);
    at += 3;
    if (bytes.size() - at < length) return false;
    if (!visit(tag, bytes.subspan(at, length))) return false;
    at += length;
  }
  return true;
}

std::optional<uint64_t> read_u64(ByteView value) {
  if (value.size() != 8) return std::nullopt;
  return load_be64(value.data());
}

std::optional<proto::SocketAddress> read_address(ByteView value) {
  if (value.size() != 19) return std::nullopt;
  proto::SocketAddress a;
  auto family = std::to_integer<uint8_t>(value[0]);
  if (family != 1 && family != 2) return std::nullopt;
  a.family = static_cast<proto::SocketAddress::Family>(family);
  a.port = load_be16(value.data() + 1);
  std::memcpy(a.ip.data(), value.data() + 3, 16);
  return a;
}

}  // namespace

bool visible_to(const Account& account, std::string_view asker) {
  switch (account.presence_visibility) {
    case proto::presence_visibility::anyone: return true;
    case proto::presence_visibility::contacts:
      return account.user_id == asker ||
             std::find(account.contacts.begin(), account.contacts.end(), asker) != account.contacts.end();
    default: return account.user_id == asker;
  }
}

Bytes encode_account(const Account& account) {
  RecordWriter w;
  w.text(Tag::user_id, account.user_id);
  w.text(Tag::password_hash, account.password_hash);
  w.text(Tag::display_name, account.display_name);
  w.text(Tag::phone, account.phone);
  w.text(Tag::category, account.category);
  if (account.publish) w.u64(Tag::publish, 1);
  if (account.services != 0) w.u64(Tag::services, account.services);
  if (account.static_address) w.address(Tag::static_address, *account.static_address);
  w.u64(Tag::created_at, account.created_at);
  if (account.generation != 0) w.u64(Tag::generation, account.generation);
  if (account.presence_visibility != 0) w.u64(Tag::presence_visibility, account.presence_visibility);
  if (account.addresses_shown) w.u64(Tag::addresses_shown, 1);
  if (account.verified) w.u64(Tag::verified, 1);
  if (account.admin) w.u64(Tag::admin, 1);
  for (const auto& id : account.contacts) w.text(Tag::contact, id);
  return w.take();
}

std::optional<Account> decode_account(ByteView bytes) {
  Account a;
  bool ok = read_fields(bytes, [&](Tag tag, ByteView value) {
    switch (tag) {
      case Tag::user_id: a.user_id = std::string(as_chars(value)); return true;
      case Tag::password_hash: a.password_hash = std::string(as_chars(value)); return true;
      case Tag::display_name: a.display_name = std::string(as_chars(value)); return true;
      case Tag::phone: a.phone = std::string(as_chars(value)); return true;
      case Tag::category: a.category = std::string(as_chars(value)); return true;
      case Tag::publish: {
        auto v = read_u64(value);
        a.publish = v && *v != 0;
        return v.has_value();
      }
      case Tag::services: {
        auto v = read_u64(value);
        if (!v || *v > 0xffffffffu) return false;
        a.services = static_cast<uint32_t>(*v);
        return true;
      }
      case Tag::static_address: a.static_address = read_address(value); return a.static_address.has_value();
      case Tag::created_at: {
        auto v = read_u64(value);
        if (v) a.created_at = *v;
        return v.has_value();
      }
      case Tag::generation: {
        auto v = read_u64(value);
        if (v) a.generation = *v;
        return v.has_value();
      }
      case Tag::presence_visibility: {
        auto v = read_u64(value);
        if (!v || *v > 0xffffffffu) return false;
        a.presence_visibility = static_cast<uint32_t>(*v);
        return true;
      }
      case Tag::addresses_shown:
      case Tag::verified:
      case Tag::admin: {
        auto v = read_u64(value);
        (tag == Tag::verified ? a.verified : tag == Tag::admin ? a.admin : a.addresses_shown) = v && *v != 0;
        return v.has_value();
      }
      case Tag::contact:
        if (value.empty()) return true;  // never written (text fields are written only when set)
        if (a.contacts.size() >= proto::max_contacts) return false;
        a.contacts.emplace_back(as_chars(value));
        return true;
      default: return true;  // a field from a newer version: keep reading
    }
  });
  if (!ok || a.user_id.empty()) return std::nullopt;
  return a;
}

std::optional<uint64_t> decode_account_generation(ByteView bytes) {
  uint64_t generation = 0;
  bool has_user_id = false;
  bool ok = read_fields(bytes, [&](Tag tag, ByteView value) {
    if (tag == Tag::user_id) has_user_id = !value.empty();
    if (tag != Tag::generation) return true;
    auto v = read_u64(value);
    if (v) generation = *v;
    return v.has_value();
  });
  if (!ok || !has_user_id) return std::nullopt;
  return generation;
}

Bytes encode_login_record(const LoginRecord& record) {
  RecordWriter w;
  w.u64(Tag::login_time, record.time);
  for (const auto& a : record.reported) w.address(Tag::login_reported, a);
  if (record.observed) w.address(Tag::login_observed, *record.observed);
  return w.take();
}

std::optional<LoginRecord> decode_login_record(ByteView bytes) {
  LoginRecord r;
  bool ok = read_fields(bytes, [&](Tag tag, ByteView value) {
    switch (tag) {
      case Tag::login_time: {
        auto v = read_u64(value);
        if (v) r.time = *v;
        return v.has_value();
      }
      case Tag::login_reported: {
        auto a = read_address(value);
        if (a) r.reported.push_back(*a);
        return a.has_value();
      }
      case Tag::login_observed: r.observed = read_address(value); return r.observed.has_value();
      default: return true;
    }
  });
  if (!ok) return std::nullopt;
  return r;
}

}  // namespace tsunagu::rendezvous
