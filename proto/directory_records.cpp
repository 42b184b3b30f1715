#include "proto/directory_records.hpp"

#include "proto/signalling.hpp"

namespace tsunagu::proto {
namespace {

// Strings are a one-byte length and the bytes; integers big-endian.
class Writer {
 public:
  bool text(std::string_view s, size_t max) {
    if (s.size() > max || s.size() > 255) return ok_ = false;
    bytes_.push_back(std::byte(static_cast<uint8_t>(s.size())));
    auto b = as_bytes(s);
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return true;
  }
  void u8(uint8_t v) { bytes_.push_back(std::byte(v)); }
  void u32(uint32_t v) {
    size_t at = bytes_.size();
    bytes_.resize(at + 4);
    store_be32(bytes_.data() + at, v);
  }
  void u64(uint64_t v) {
    size_t at = bytes_.size();
    bytes_.resize(at + 8);
    store_be64(bytes_.data() + at, v);
  }
  Bytes take() { return ok_ && bytes_.size() <= max_directory_record_size ? std::move(bytes_) : Bytes{}; }

 private:
  Bytes bytes_;
  bool ok_ = true;
};

class Reader {
 public:
  explicit Reader(ByteView b) : b_(b), ok_(b.size() <= max_directory_record_size) {}
  std::string text(size_t max) {
    if (!ok_ || at_ >= b_.size()) return fail();
    size_t n = std::to_integer<uint8_t>(b_[at_]);
    if (n > max || b_.size() - at_ - 1 < n) return fail();
    std::string out(as_chars(b_.subspan(at_ + 1, n)));
    at_ += 1 + n;
    return out;
  }
  uint8_t u8() {
    if (!ok_ || at_ >= b_.size()) return ok_ = false, 0;
    return std::to_integer<uint8_t>(b_[at_++]);
  }
  uint32_t u32() {
    if (!ok_ || b_.size() - at_ < 4) return ok_ = false, 0;
    uint32_t v = load_be32(b_.data() + at_);
    at_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!ok_ || b_.size() - at_ < 8) return ok_ = false, 0;
    uint64_t v = load_be64(b_.data() + at_);
    at_ += 8;
    return v;
  }
  // Everything read and nothing left over.
  bool done() const { return ok_ && at_ == b_.size(); }

 private:
  std::string fail() {
    ok_ = false;
    return {};
  }
  ByteView b_;
  size_t at_ = 0;
  bool ok_;
};

}  // namespace

Bytes encode_directory_entry(const DirectoryEntry& e) {
  Writer w;
  w.u8(static_cast<uint8_t>((e.online ? 1 : 0) | (e.verified ? 2 : 0)));
  w.text(e.user_id, max_user_id_size);
  w.text(e.display_name, max_display_name_size);
  w.text(e.category, max_category_size);
  w.text(e.phone, max_phone_size);
  return w.take();
}

std::optional<DirectoryEntry> decode_directory_entry(ByteView bytes) {
  Reader r(bytes);
  DirectoryEntry e;
  uint8_t flags = r.u8();
  e.online = (flags & 1) != 0;
  e.verified = (flags & 2) != 0;
  e.user_id = r.text(max_user_id_size);
  e.display_name = r.text(max_display_name_size);
  e.category = r.text(max_category_size);
  e.phone = r.text(max_phone_size);
  if (!r.done() || flags > 3 || e.user_id.empty()) return std::nullopt;
  return e;
}

Bytes encode_category_count(const CategoryCount& c) {
  Writer w;
  w.u32(c.count);
  w.text(c.name, max_category_size);
  return w.take();
}

std::optional<CategoryCount> decode_category_count(ByteView bytes) {
  Reader r(bytes);
  CategoryCount c;
  c.count = r.u32();
  c.name = r.text(max_category_size);
  if (!r.done() || c.name.empty()) return std::nullopt;
  return c;
}

Bytes encode_voicemail_entry(const VoicemailEntry& e) {
  Writer w;
  w.u64(e.id);
  w.u64(e.time);
  w.u64(e.size);
  w.text(e.caller, max_user_id_size);
  return w.take();
}

std::optional<VoicemailEntry> decode_voicemail_entry(ByteView bytes) {
  Reader r(bytes);
  VoicemailEntry e;
  e.id = r.u64();
  e.time = r.u64();
  e.size = r.u64();
  e.caller = r.text(max_user_id_size);
  if (!r.done() || e.caller.empty()) return std::nullopt;
  return e;
}

}  // namespace tsunagu::proto
