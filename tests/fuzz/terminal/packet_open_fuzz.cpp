// Fuzz target: PacketOpener::open on arbitrary bytes with fixed call keys.
// Any input must be opened or refused, never crash. What opens must be a
// well-formed caller_to_callee packet of the fixed call, must not open twice,
// and must not open for the other direction or another call; one flipped tag
// bit must make it fail. A violation aborts, so libFuzzer reports it.
//
// The seed corpus holds genuine packets sealed with the fixed keys below
// (secret 00 01 .. 1f, call ID "0123456789abcdef0123456789abcdef").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "terminal/packet_protection.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

CallKeyMaterial fixed_material(std::string call_id) {
  CallKeyMaterial m{};
  for (size_t i = 0; i < m.secret.size(); ++i) m.secret[i] = std::byte(i);
  m.call_id = std::move(call_id);
  return m;
}

const CallKeyMaterial& ours() {
  static const CallKeyMaterial m = fixed_material("0123456789abcdef0123456789abcdef");
  return m;
}
const CallKeyMaterial& another_call() {
  static const CallKeyMaterial m = fixed_material("fedcba9876543210fedcba9876543210");
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView packet(reinterpret_cast<const std::byte*>(data), size);

  PacketOpener opener(ours(), Direction::caller_to_callee);
  auto opened = opener.open(packet);
  require(opener.packets_opened() + opener.packets_rejected() == 1);
  if (!opened) {
    require(opener.packets_rejected(opened.error()) == 1);
    require(!opener.replay_window().any_accepted());  // a refused packet leaves no trace
    return 0;
  }

  require(size >= packet_overhead && size <= max_sealed_packet_size);
  require(opened->size() == size - packet_overhead);
  require(packet[0] == std::byte{packet_version});
  require(packet[1] == std::byte{static_cast<uint8_t>(Direction::caller_to_callee)});
  require(opener.replay_window().highest() == load_be64(packet.data() + 2));

  auto again = opener.open(packet);
  require(!again && again.error() == OpenError::replayed);

  PacketOpener other_direction(ours(), Direction::callee_to_caller);
  auto reflected = other_direction.open(packet);
  require(!reflected && reflected.error() == OpenError::wrong_direction);

  PacketOpener other_call(another_call(), Direction::caller_to_callee);
  auto foreign = other_call.open(packet);
  require(!foreign && foreign.error() == OpenError::authentication_failed);

  Bytes flipped(packet.begin(), packet.end());
  flipped.back() ^= std::byte{0x01};
  PacketOpener fresh(ours(), Direction::caller_to_callee);
  auto forged = fresh.open(flipped);
  require(!forged && forged.error() == OpenError::authentication_failed);
  return 0;
}
