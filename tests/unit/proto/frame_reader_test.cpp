#include "proto/frame_reader.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proto/signalling.hpp"
#include "test_bytes.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;
using tsunagu::proto::test::hex;

namespace {

Bytes message(uint8_t n, size_t payload = 0) {
  TransactionId id;
  id.bytes.fill(std::byte(n));
  return MessageBuilder(MessageClass::request, method::keepalive, id)
      .add_u32(attr::protocol_version, protocol_version)
      .add(0xC0F0, Bytes(payload, std::byte(n)))
      .finish();
}

// Drains every whole message the reader holds; REQUIREs no error.
std::vector<Bytes> drain(FrameReader& reader) {
  std::vector<Bytes> out;
  for (;;) {
    auto next = reader.next();
    REQUIRE(next.has_value());
    if (!next->has_value()) return out;
    out.emplace_back((*next)->begin(), (*next)->end());
  }
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

DecodeErrc error_after(FrameReader& reader) {
  for (;;) {
    auto next = reader.next();
    if (!next.has_value()) return next.error().code;
    if (!next->has_value()) return DecodeErrc::need_more;
  }
}

}  // namespace

TEST_CASE("frame reader: an empty reader needs more") {
  FrameReader reader;
  auto next = reader.next();
  REQUIRE(next.has_value());
  CHECK_FALSE(next->has_value());
  CHECK(reader.buffered() == 0);
  CHECK_FALSE(reader.failed());
}

TEST_CASE("frame reader: byte-at-a-time feeding yields each message once, whole") {
  const std::vector<Bytes> messages{message(1), message(2, 13), message(3, 300)};
  const Bytes stream = concat(messages);
  FrameReader reader;
  std::vector<Bytes> got;
  for (std::byte b : stream) {
    reader.append(ByteView(&b, 1));
    for (auto& m : drain(reader)) got.push_back(std::move(m));
  }
  CHECK(got == messages);
  CHECK(reader.buffered() == 0);
  for (const auto& m : got) CHECK(decode(m).has_value());
}

TEST_CASE("frame reader: several messages in one append come out in order") {
  const std::vector<Bytes> messages{message(1), message(2), message(3, 5), message(4, 1000)};
  FrameReader reader;
  reader.append(concat(messages));
  CHECK(drain(reader) == messages);
  CHECK(reader.buffered() == 0);
}

TEST_CASE("frame reader: a message split across appends at any point is reassembled") {
  const std::vector<Bytes> messages{message(7, 40), message(8, 3)};
  const Bytes stream = concat(messages);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    CAPTURE(cut);
    FrameReader reader;
    reader.append(ByteView(stream).first(cut));
    auto got = drain(reader);
    reader.append(ByteView(stream).subspan(cut));
    auto rest = drain(reader);
    got.insert(got.end(), rest.begin(), rest.end());
    CHECK(got == messages);
  }
}

TEST_CASE("frame reader: a view stays valid until the next call and the buffer stays small") {
  FrameReader reader;
  const Bytes m = message(9, 100);
  // Many messages, each fed in two uneven pieces: the buffer must never hold
  // more than one message plus the piece in flight.
  for (int i = 0; i < 2000; ++i) {
    reader.append(ByteView(m).first(31));
    reader.append(ByteView(m).subspan(31));
    auto next = reader.next();
    REQUIRE(next.has_value());
    REQUIRE(next->has_value());
    CHECK(Bytes((*next)->begin(), (*next)->end()) == m);
    CHECK(reader.buffered() == 0);
  }
}

TEST_CASE("frame reader: an oversized announced length fails before the body arrives") {
  FrameReader reader;  // 16 KiB default
  reader.append(hex("00 03 ff fc"));  // 65,532 bytes of attributes announced
  auto next = reader.next();
  REQUIRE_FALSE(next.has_value());
  CHECK(next.error().code == DecodeErrc::too_large);
  CHECK(reader.failed());
  // It stays failed, and does not buffer what follows.
  reader.append(Bytes(1000, std::byte{0}));
  CHECK(reader.buffered() <= 4);
  CHECK(error_after(reader) == DecodeErrc::too_large);

  FrameReader small(64);
  small.append(ByteView(message(1, 100)).first(4));
  CHECK(error_after(small) == DecodeErrc::too_large);
  FrameReader exact(message(1, 100).size());
  exact.append(message(1, 100));
  CHECK(drain(exact).size() == 1);
}

TEST_CASE("frame reader: HTTP and TLS bytes are rejected as not STUN") {
  FrameReader http;
  http.append(as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(error_after(http) == DecodeErrc::not_stun);

  // A TLS ClientHello record header: handshake (0x16), record version 3.1,
  // record length 0x00f8, then the handshake type 0x01. Read as STUN, its
  // first bits are 00 and its length (0x0100) a multiple of 4, so the missing
  // magic cookie is what gives it away, on the fifth byte.
  FrameReader tls;
  tls.append(hex("16 03 01 00 f8"));
  CHECK(error_after(tls) == DecodeErrc::not_stun);
  // A longer record (length 0x0200) reads as a STUN length of 0x0102, which is
  // not a multiple of 4: refused from the first 4 bytes.
  FrameReader tls_long;
  tls_long.append(hex("16 03 01 02 00 01 00 01 fc 03 03"));
  CHECK(error_after(tls_long) == DecodeErrc::bad_length);

  // A first byte with either of the top bits set fails at once.
  FrameReader one;
  one.append(hex("47"));
  CHECK(error_after(one) == DecodeErrc::not_stun);
}

TEST_CASE("frame reader: garbage after a good message fails only after that message") {
  FrameReader reader;
  Bytes stream = message(5);
  const Bytes garbage = to_bytes("GET /");
  stream.insert(stream.end(), garbage.begin(), garbage.end());
  reader.append(stream);
  auto first = reader.next();
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK(Bytes((*first)->begin(), (*first)->end()) == message(5));
  auto second = reader.next();
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == DecodeErrc::not_stun);
  // Good bytes after the failure are ignored: the stream lost sync.
  reader.append(message(6));
  CHECK(error_after(reader) == DecodeErrc::not_stun);
}

TEST_CASE("frame reader: a length that is not a multiple of 4 fails") {
  FrameReader reader;
  reader.append(hex("00 01 00 06 21 12 a4 42"));
  CHECK(error_after(reader) == DecodeErrc::bad_length);
}
