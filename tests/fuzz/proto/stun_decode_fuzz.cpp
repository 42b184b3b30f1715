// Fuzz target: STUN decode, every attribute reader, and re-encoding.
// Anything that decodes must re-encode to a message that decodes to the same
// thing; every reader's result must survive its builder counterpart. A
// mismatch aborts, so libFuzzer reports it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/stun_message.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;

namespace {

// The largest message the length field can announce.
constexpr size_t max_any_size = header_size + 0xFFFC;
// Values are rewritten under this type, not their own: rewriting a
// FINGERPRINT's value as a FINGERPRINT would not be a valid message.
constexpr uint16_t probe_type = 0xC0FE;

void require(bool ok) {
  if (!ok) std::abort();
}

bool same_bytes(ByteView a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Decodes one attribute value written by `write` into a fresh message that
// has the header (cookie, transaction ID) of `m`.
template <class Write>
Decoded rewrite(const Message& m, Write write, Bytes& storage) {
  MessageBuilder b = MessageBuilder::response_to(m, m.message_class);
  write(b);
  storage = b.finish();
  auto d = decode(storage, max_any_size, true);
  require(d.has_value());
  require(d->message.attributes.size() >= 1);
  return std::move(d.value());
}

void check_readers(const Message& m) {
  for (const Attribute& a : m.attributes) {
    Bytes storage;
    if (auto addr = read_address(a)) {
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_address(probe_type, *addr); }, storage);
      require(read_address(d.message.attributes[0]) == addr);
      require(same_bytes(d.message.attributes[0].value.subspan(1), a.value.subspan(1)));
    }
    if (auto addr = read_xor_address(a, m)) {
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_xor_address(probe_type, *addr); }, storage);
      require(read_xor_address(d.message.attributes[0], d.message) == addr);
    }
    if (auto v = read_u8(a)) {
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_u8(probe_type, *v); }, storage);
      require(read_u8(d.message.attributes[0]) == v);
    }
    if (auto v = read_u32(a)) {
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_u32(probe_type, *v); }, storage);
      require(read_u32(d.message.attributes[0]) == v);
      require(same_bytes(d.message.attributes[0].value, a.value));
    }
    if (auto v = read_u64(a)) {
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_u64(probe_type, *v); }, storage);
      require(read_u64(d.message.attributes[0]) == v);
      require(same_bytes(d.message.attributes[0].value, a.value));
    }
    {
      std::string_view s = read_string(a);
      require(s.size() == a.value.size());
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_string(probe_type, s); }, storage);
      require(read_string(d.message.attributes[0]) == s);
    }
    if (auto e = read_error_code(a)) {
      require(e->code >= 300 && e->code <= 699);
      auto d = rewrite(m, [&](MessageBuilder& b) { b.add_error(e->code, e->reason); }, storage);
      auto back = read_error_code(*d.message.find(attr::error_code));
      require(back.has_value());
      require(back->code == e->code && back->reason == e->reason);
    }
  }
}

void check_reencode(const Message& m, size_t consumed) {
  MessageBuilder b = MessageBuilder::response_to(m, m.message_class);
  for (const Attribute& a : m.attributes) {
    if (a.type == attr::fingerprint && m.has_fingerprint) continue;  // recomputed by finish()
    b.add(a.type, a.value);
  }
  Bytes out = b.finish(m.has_fingerprint);
  require(out.size() == consumed);
  auto d = decode(out, consumed, true);
  require(d.has_value());
  const Message& r = d->message;
  require(r.message_class == m.message_class && r.method == m.method);
  require(r.transaction_id == m.transaction_id);
  require(r.classic == m.classic && r.classic_cookie == m.classic_cookie);
  require(r.has_fingerprint == m.has_fingerprint);
  require(r.attributes.size() == m.attributes.size());
  for (size_t i = 0; i < r.attributes.size(); ++i) {
    require(r.attributes[i].type == m.attributes[i].type);
    if (r.attributes[i].type == attr::fingerprint && m.has_fingerprint) continue;
    require(same_bytes(r.attributes[i].value, m.attributes[i].value));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  for (bool allow_classic : {false, true}) {
    for (size_t limit : {default_max_message_size, max_any_size}) {
      auto d = decode(input, limit, allow_classic);
      if (!d) continue;
      const Message& m = d->message;
      require(d->consumed >= header_size && d->consumed <= size && d->consumed <= limit);
      require(d->consumed % 4 == 0);
      require(allow_classic || !m.classic);
      require(m.attributes.size() <= 128);
      // A strict prefix of a message that decodes needs more.
      auto shorter = decode(input.first(d->consumed - 1), limit, allow_classic);
      require(!shorter && shorter.error().code == DecodeErrc::need_more);
      auto size_check = announced_size(input, limit);
      require(size_check.has_value() && *size_check == d->consumed);
      check_reencode(m, d->consumed);
      check_readers(m);
    }
  }
  return 0;
}
