#include "terminal/packet_protection.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

namespace {

// secret = 00 01 02 ... 1f, call ID = "0123456789abcdef0123456789abcdef"
CallKeyMaterial test_material() {
  CallKeyMaterial m{};
  for (size_t i = 0; i < m.secret.size(); ++i) m.secret[i] = std::byte(i);
  m.call_id = "0123456789abcdef0123456789abcdef";
  return m;
}

CallKeyMaterial random_material(std::mt19937_64& random) {
  CallKeyMaterial m{};
  for (auto& b : m.secret) b = std::byte(random() & 0xff);
  m.call_id = std::to_string(random());
  return m;
}

Bytes from_hex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(std::byte(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

Bytes payload(size_t size, uint8_t seed = 0) {
  Bytes p(size);
  for (size_t i = 0; i < size; ++i) p[i] = std::byte((i * 31 + seed) & 0xff);
  return p;
}

// "ok", or the name of the error opening `packet` gave.
std::string outcome(PacketOpener& opener, ByteView packet) {
  auto r = opener.open(packet);
  return r ? std::string("ok") : std::string(to_string(r.error()));
}

}  // namespace

TEST_CASE("key derivation: known answer from the openssl CLI") {
  // Computed once with OpenSSL 3.0 (the same secret and call ID as test_material()):
  //   openssl kdf -keylen 36 -kdfopt digest:SHA256
  //     -kdfopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
  //     -kdfopt salt:0123456789abcdef0123456789abcdef
  //     -kdfopt "info:tsunagu v1 caller_to_callee" HKDF
  //   -> 44BF0956...FFDDB963 | C8C8A8F3
  //   (same with "info:tsunagu v1 callee_to_caller")
  //   -> 540A1F7C...15D7C8E9 | 5846116B
  // The first 32 bytes are the key, the last 4 the nonce salt; the salt's top
  // bit is then set by direction (0 / 1): C8 -> 48, 58 -> D8.
  auto c2c = derive_direction_keys(test_material(), Direction::caller_to_callee);
  CHECK(to_hex(c2c.key) == "44bf0956dbcf45d7e299321554b62459d2ab3744d2cfc15d5fae438bffddb963");
  CHECK(to_hex(c2c.nonce_salt) == "48c8a8f3");
  auto c2r = derive_direction_keys(test_material(), Direction::callee_to_caller);
  CHECK(to_hex(c2r.key) == "540a1f7c01c86d39d1f9f016bd47350515cb2fc05dd11bdcbcf59dab15d7c8e9");
  CHECK(to_hex(c2r.nonce_salt) == "d846116b");
}

TEST_CASE("seal: known answer packet from an independent ChaCha20-Poly1305") {
  // Computed once with Python's `cryptography` package (HKDF as above, then
  // ChaCha20Poly1305(key).encrypt(nonce, b"hello, tsunagu", header + call_id)):
  //   01                  version
  //   01                  caller_to_callee
  //   0000000000000005    sequence 5
  //   da0ad8...d56c80     ciphertext (14 bytes)
  //   7957e7...efc2       tag (16 bytes)
  // nonce = 48c8a8f3 || 0000000000000005
  const Bytes expected = from_hex(
      "01010000000000000005da0ad807189983920cc69acd18472ddbd1c05d35d56c807957e7ddcdefc2");
  auto sealer = PacketSealer::starting_at_for_testing(test_material(), Direction::caller_to_callee, 5);
  Bytes packet = sealer.seal(as_bytes("hello, tsunagu"));
  CHECK(to_hex(packet) == to_hex(expected));
  CHECK(to_hex(packet_nonce(derive_direction_keys(test_material(), Direction::caller_to_callee), 5)) ==
        "48c8a8f30000000000000005");

  PacketOpener opener(test_material(), Direction::caller_to_callee);
  auto opened = opener.open(expected);
  REQUIRE(opened);
  CHECK(as_chars(*opened) == "hello, tsunagu");
}

TEST_CASE("seal/open: round trip in both directions") {
  for (Direction d : {Direction::caller_to_callee, Direction::callee_to_caller}) {
    CAPTURE(to_string(d));
    PacketSealer sealer(test_material(), d);
    PacketOpener opener(test_material(), d);
    CHECK(sealer.direction() == d);
    for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1200}, max_packet_plaintext}) {
      CAPTURE(size);
      Bytes plain = payload(size, static_cast<uint8_t>(size));
      Bytes packet = sealer.seal(plain);
      REQUIRE(packet.size() == sealed_size(size));
      CHECK(packet[0] == std::byte{1});
      CHECK(packet[1] == std::byte{static_cast<uint8_t>(d)});
      CHECK(load_be64(packet.data() + 2) == sealer.packets_sealed() - 1);
      auto opened = opener.open(packet);
      REQUIRE(opened);
      CHECK(*opened == plain);
    }
    CHECK(sealer.packets_sealed() == 6);
    CHECK(opener.packets_opened() == 6);
    CHECK(opener.packets_rejected() == 0);
  }
}

TEST_CASE("seal/open: into caller buffers") {
  PacketSealer sealer(test_material(), Direction::callee_to_caller);
  PacketOpener opener(test_material(), Direction::callee_to_caller);
  Bytes plain = payload(300);
  std::vector<std::byte> wire(max_sealed_packet_size);
  size_t n = sealer.seal_into(plain, wire);
  CHECK(n == sealed_size(plain.size()));
  std::vector<std::byte> out(plain.size());  // exactly the plaintext size is enough
  auto opened = opener.open_into(ByteView(wire).first(n), out);
  REQUIRE(opened);
  CHECK(*opened == plain.size());
  CHECK(out == plain);
}

TEST_CASE("open: a failed authentication leaves no plaintext in the output buffer") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  Bytes plain = payload(64, 7);
  Bytes packet = sealer.seal(plain);
  packet.back() ^= std::byte{1};  // tag
  std::vector<std::byte> out(plain.size(), std::byte{0xAA});
  auto opened = opener.open_into(packet, out);
  REQUIRE_FALSE(opened);
  CHECK(opened.error() == OpenError::authentication_failed);
  CHECK(std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("open: every single-bit flip of a sealed packet is rejected") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  const Bytes packet = sealer.seal(payload(40));
  uint64_t flips = 0;
  for (size_t byte = 0; byte < packet.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(byte);
      CAPTURE(bit);
      Bytes bad = packet;
      bad[byte] ^= std::byte(1u << bit);
      auto r = opener.open(bad);
      REQUIRE_FALSE(r);
      if (byte == 0) {
        CHECK(r.error() == OpenError::bad_version);
      } else if (byte == 1) {
        CHECK(r.error() == OpenError::wrong_direction);
      } else {
        // Sequence, ciphertext and tag bits are all covered by the tag.
        CHECK(r.error() == OpenError::authentication_failed);
      }
      ++flips;
    }
  }
  CHECK(opener.packets_rejected() == flips);
  CHECK(opener.packets_rejected(OpenError::authentication_failed) == flips - 16);
  CHECK_FALSE(opener.replay_window().any_accepted());
  // None of that moved the window: the genuine packet still opens.
  CHECK(outcome(opener, packet) == "ok");
}

TEST_CASE("open: a replayed packet is rejected") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  Bytes first = sealer.seal(payload(10));
  Bytes second = sealer.seal(payload(10));
  CHECK(outcome(opener, first) == "ok");
  CHECK(outcome(opener, first) == "replayed");
  CHECK(outcome(opener, second) == "ok");
  CHECK(outcome(opener, second) == "replayed");
  CHECK(outcome(opener, first) == "replayed");
  CHECK(opener.packets_opened() == 2);
  CHECK(opener.packets_rejected(OpenError::replayed) == 3);
}

TEST_CASE("open: reordered packets inside the window are accepted once each") {
  PacketSealer sealer(test_material(), Direction::callee_to_caller);
  PacketOpener opener(test_material(), Direction::callee_to_caller);
  std::vector<Bytes> packets;
  for (int i = 0; i < 50; ++i) packets.push_back(sealer.seal(payload(20, static_cast<uint8_t>(i))));
  std::vector<size_t> order(packets.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  for (size_t i : order) {
    auto r = opener.open(packets[i]);
    REQUIRE(r);
    CHECK(*r == payload(20, static_cast<uint8_t>(i)));
  }
  for (size_t i : order) CHECK(outcome(opener, packets[i]) == "replayed");
  CHECK(opener.packets_opened() == 50);
}

TEST_CASE("open: a packet far older than the window is too old") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  std::vector<Bytes> packets;
  for (int i = 0; i < 2000; ++i) packets.push_back(sealer.seal(payload(4)));
  CHECK(outcome(opener, packets[1999]) == "ok");
  CHECK(outcome(opener, packets[0]) == "too_old");
  CHECK(outcome(opener, packets[1999 - 1024]) == "too_old");
  CHECK(outcome(opener, packets[1999 - 1023]) == "ok");
  CHECK(opener.packets_rejected(OpenError::too_old) == 2);
}

TEST_CASE("open: a packet for the other direction is rejected") {
  // The caller sends caller_to_callee and receives callee_to_caller.
  PacketSealer caller_out(test_material(), Direction::caller_to_callee);
  PacketOpener caller_in(test_material(), Direction::callee_to_caller);
  Bytes own = caller_out.seal(payload(30));
  CHECK(outcome(caller_in, own) == "wrong_direction");  // reflected back at its sender
  // Rewriting the direction byte does not help: other key, and the header is authenticated.
  own[1] = std::byte{static_cast<uint8_t>(Direction::callee_to_caller)};
  CHECK(outcome(caller_in, own) == "authentication_failed");
  CHECK(caller_in.packets_opened() == 0);
}

TEST_CASE("open: a packet from another call is rejected") {
  CallKeyMaterial ours = test_material();
  CallKeyMaterial other_id = ours;
  other_id.call_id = "fedcba9876543210fedcba9876543210";
  CallKeyMaterial other_secret = ours;
  other_secret.secret[31] ^= std::byte{0x01};

  for (Direction d : {Direction::caller_to_callee, Direction::callee_to_caller}) {
    PacketOpener opener(ours, d);
    PacketSealer same_secret(other_id, d);
    PacketSealer same_call(other_secret, d);
    CHECK(outcome(opener, same_secret.seal(payload(25))) == "authentication_failed");
    CHECK(outcome(opener, same_call.seal(payload(25))) == "authentication_failed");
    CHECK_FALSE(opener.replay_window().any_accepted());
  }
}

TEST_CASE("open: the call ID is authenticated even if two calls had the same keys") {
  // HMAC pads its key with zeros, so the HKDF salts "" and "\0" give the same
  // keys: two calls whose keys collide. The call ID in the associated data
  // still tells their packets apart.
  CallKeyMaterial a = test_material();
  a.call_id = "";
  CallKeyMaterial b = test_material();
  b.call_id = std::string(1, '\0');
  REQUIRE(to_hex(derive_direction_keys(a, Direction::caller_to_callee).key) ==
          to_hex(derive_direction_keys(b, Direction::caller_to_callee).key));
  PacketSealer sealer(a, Direction::caller_to_callee);
  PacketOpener same_keys_other_call(b, Direction::caller_to_callee);
  PacketOpener same_call(a, Direction::caller_to_callee);
  Bytes packet = sealer.seal(payload(12));
  CHECK(outcome(same_keys_other_call, packet) == "authentication_failed");
  CHECK(outcome(same_call, packet) == "ok");
}

TEST_CASE("open: a forged packet does not move the replay window") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  std::vector<Bytes> packets;
  for (int i = 0; i < 3; ++i) packets.push_back(sealer.seal(payload(8)));
  CHECK(outcome(opener, packets[0]) == "ok");

  // A forged packet far ahead: if it moved the window, every genuine packet would become too old.
  Bytes forged = packets[1];
  store_be64(forged.data() + 2, 1'000'000);
  CHECK(outcome(opener, forged) == "authentication_failed");
  CHECK(opener.replay_window().highest() == 0);
  // A forged packet with the sequence number of a genuine one that has not arrived yet.
  Bytes early = packets[2];
  early[packet_header_size] ^= std::byte{0x80};
  CHECK(outcome(opener, early) == "authentication_failed");

  CHECK(outcome(opener, packets[2]) == "ok");
  CHECK(outcome(opener, packets[1]) == "ok");
  CHECK(opener.replay_window().highest() == 2);
}

TEST_CASE("open: size limits") {
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  for (size_t size = 0; size < packet_overhead; ++size) {
    Bytes tiny(size, std::byte{1});
    CHECK(outcome(opener, tiny) == "too_short");
  }
  Bytes huge(max_sealed_packet_size + 1, std::byte{0});
  huge[0] = std::byte{1};
  huge[1] = std::byte{1};
  CHECK(outcome(opener, huge) == "too_large");
  Bytes largest(max_sealed_packet_size, std::byte{0});
  largest[0] = std::byte{1};
  largest[1] = std::byte{1};
  CHECK(outcome(opener, largest) == "authentication_failed");
  // An empty plaintext is a valid packet of exactly the overhead.
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  Bytes empty = sealer.seal({});
  CHECK(empty.size() == packet_overhead);
  CHECK(outcome(opener, empty) == "ok");
}

TEST_CASE("nonces: the two directions never produce the same nonce") {
  std::mt19937_64 random(99);
  for (int trial = 0; trial < 200; ++trial) {
    CallKeyMaterial m = trial == 0 ? test_material() : random_material(random);
    auto c2c = derive_direction_keys(m, Direction::caller_to_callee);
    auto c2r = derive_direction_keys(m, Direction::callee_to_caller);
    CHECK(c2c.key != c2r.key);
    // The top bit of the first nonce byte is the direction, so no sequence
    // number of one direction can give a nonce of the other.
    CHECK((std::to_integer<unsigned>(c2c.nonce_salt[0]) & 0x80u) == 0);
    CHECK((std::to_integer<unsigned>(c2r.nonce_salt[0]) & 0x80u) == 0x80u);
  }
  // And as observed on sealed packets: rebuild the nonce from each header.
  CallKeyMaterial m = test_material();
  PacketSealer a(m, Direction::caller_to_callee);
  PacketSealer b(m, Direction::callee_to_caller);
  std::set<std::string> nonces;
  for (int i = 0; i < 500; ++i) {
    for (PacketSealer* s : {&a, &b}) {
      Bytes packet = s->seal(payload(3));
      auto keys = derive_direction_keys(m, static_cast<Direction>(std::to_integer<uint8_t>(packet[1])));
      CHECK(nonces.insert(to_hex(packet_nonce(keys, load_be64(packet.data() + 2)))).second);
    }
  }
  CHECK(nonces.size() == 1000);
}

TEST_CASE("seal: a moved sealer keeps counting") {
  PacketSealer sealer(test_material(), Direction::caller_to_callee);
  (void)sealer.seal(payload(1));
  PacketSealer moved = std::move(sealer);
  Bytes packet = moved.seal(payload(1));
  CHECK(load_be64(packet.data() + 2) == 1);
  CHECK(moved.packets_sealed() == 2);
}

TEST_CASE("seal: aborts instead of reusing a nonce when sequence numbers run out") {
  auto sealer = PacketSealer::starting_at_for_testing(test_material(), Direction::caller_to_callee, UINT64_MAX - 1);
  CHECK(sealer.remaining() == 1);
  Bytes last = sealer.seal(payload(5));
  CHECK(load_be64(last.data() + 2) == UINT64_MAX - 1);
  CHECK(sealer.remaining() == 0);
  PacketOpener opener(test_material(), Direction::caller_to_callee);
  CHECK(outcome(opener, last) == "ok");

  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGABRT, SIG_DFL);  // die plainly, without doctest's crash report
    close(STDERR_FILENO);           // the abort message is expected
    (void)sealer.seal(payload(5));
    _exit(0);  // reached only if seal() did not abort
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("to_string: every open error and direction has its own name") {
  std::set<std::string> names;
  for (size_t i = 0; i < open_error_count; ++i) names.insert(std::string(to_string(static_cast<OpenError>(i))));
  CHECK(names.size() == open_error_count);
  CHECK(names.count("unknown") == 0);
  CHECK(to_string(Direction::caller_to_callee) == "caller_to_callee");
  CHECK(to_string(Direction::callee_to_caller) == "callee_to_caller");
}
