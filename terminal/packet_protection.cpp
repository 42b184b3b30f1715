#include "terminal/packet_protection.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "security/hkdf.hpp"
#include "security/random.hpp"

namespace tsunagu::terminal {

namespace {

constexpr size_t hkdf_output_size = 32 + 4;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tsunagu: packet protection: %s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

bool overlap(ByteView a, std::span<const std::byte> b) {
  if (a.empty() || b.empty()) return false;
  std::less<const std::byte*> before;
  return before(a.data(), b.data() + b.size()) && before(b.data(), a.data() + a.size());
}

template <typename T>
std::span<std::byte> secret_bytes(T& value) {
  return std::as_writable_bytes(std::span(&value, 1));
}

// Derives a direction's keys, keys the cipher and wipes the derived key.
security::ChaCha20Poly1305 keyed_cipher(const CallKeyMaterial& material, Direction direction,
                                        security::ChaCha20Poly1305::Mode mode,
                                        std::array<std::byte, 4>& nonce_salt) {
  DirectionKeys keys = derive_direction_keys(material, direction);
  security::ChaCha20Poly1305 cipher(keys.key, mode);
  nonce_salt = keys.nonce_salt;
  security::wipe(secret_bytes(keys));
  return cipher;
}

security::AeadNonce nonce_for(const std::array<std::byte, 4>& nonce_salt, uint64_t sequence) {
  security::AeadNonce nonce{};
  std::copy(nonce_salt.begin(), nonce_salt.end(), nonce.begin());
  store_be64(nonce.data() + nonce_salt.size(), sequence);
  return nonce;
}

}  // namespace

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::caller_to_callee: return "caller_to_callee";
    case Direction::callee_to_caller: return "callee_to_caller";
  }
  return "unknown";
}

std::string_view to_string(OpenError error) {
  switch (error) {
    case OpenError::too_short: return "too_short";
    case OpenError::too_large: return "too_large";
    case OpenError::bad_version: return "bad_version";
    case OpenError::wrong_direction: return "wrong_direction";
    case OpenError::replayed: return "replayed";
    case OpenError::too_old: return "too_old";
    case OpenError::authentication_failed: return "authentication_failed";
  }
  return "unknown";
}

DirectionKeys derive_direction_keys(const CallKeyMaterial& material, Direction direction) {
  require(direction == Direction::caller_to_callee || direction == Direction::callee_to_caller, "invalid direction");
  std::string info = "tsunagu v1 ";
  info += to_string(direction);
  std::array<std::byte, hkdf_output_size> output{};
  security::hkdf_sha256(material.secret, as_bytes(material.call_id), as_bytes(info), output);

  DirectionKeys keys{};
  std::copy_n(output.begin(), keys.key.size(), keys.key.begin());
  std::copy_n(output.begin() + keys.key.size(), keys.nonce_salt.size(), keys.nonce_salt.begin());
  security::wipe(output);
  // The direction owns the top bit of the nonce: the two directions can never
  // produce the same nonce, whatever HKDF returned.
  keys.nonce_salt[0] &= std::byte{0x7f};
  if (direction == Direction::callee_to_caller) keys.nonce_salt[0] |= std::byte{0x80};
  return keys;
}

std::array<std::byte, 12> packet_nonce(const DirectionKeys& keys, uint64_t sequence) {
  return nonce_for(keys.nonce_salt, sequence);
}

// ---- PacketSealer ----

PacketSealer::PacketSealer(const CallKeyMaterial& material, Direction outgoing) : PacketSealer(material, outgoing, 0) {}

PacketSealer::PacketSealer(const CallKeyMaterial& material, Direction outgoing, uint64_t first_sequence)
    : call_id_(material.call_id), direction_(outgoing), first_sequence_(first_sequence), next_sequence_(first_sequence) {
  aead_ = keyed_cipher(material, outgoing, security::ChaCha20Poly1305::Mode::seal, nonce_salt_);
}

PacketSealer PacketSealer::starting_at_for_testing(const CallKeyMaterial& material, Direction outgoing,
                                                   uint64_t first_sequence) {
  return PacketSealer(material, outgoing, first_sequence);
}

PacketSealer::PacketSealer(PacketSealer&&) noexcept = default;
PacketSealer& PacketSealer::operator=(PacketSealer&&) noexcept = default;
PacketSealer::~PacketSealer() = default;

size_t PacketSealer::seal_into(ByteView plaintext, std::span<std::byte> out) {
  require(plaintext.size() <= max_packet_plaintext, "seal: plaintext over max_packet_plaintext");
  const size_t total = sealed_size(plaintext.size());
  require(out.size() >= total, "seal: output buffer too small");
  require(!overlap(plaintext, out.first(total)), "seal: output overlaps plaintext");
  // Checked before anything is written: a nonce is never used twice.
  require(next_sequence_ <= last_sequence, "seal: sequence numbers exhausted, refusing to reuse a nonce");
  const uint64_t sequence = next_sequence_++;

  out[0] = std::byte{packet_version};
  out[1] = std::byte{static_cast<uint8_t>(direction_)};
  store_be64(out.data() + 2, sequence);

  std::byte* ciphertext = out.data() + packet_header_size;
  aead_.seal(nonce_for(nonce_salt_, sequence), {out.first(packet_header_size), as_bytes(call_id_)}, plaintext,
             std::span(ciphertext, plaintext.size()),
             std::span<std::byte, packet_tag_size>(ciphertext + plaintext.size(), packet_tag_size));
  return total;
}

Bytes PacketSealer::seal(ByteView plaintext) {
  require(plaintext.size() <= max_packet_plaintext, "seal: plaintext over max_packet_plaintext");
  Bytes packet(sealed_size(plaintext.size()));
  seal_into(plaintext, packet);
  return packet;
}

// ---- PacketOpener ----

PacketOpener::PacketOpener(const CallKeyMaterial& material, Direction incoming)
    : call_id_(material.call_id), direction_(incoming) {
  aead_ = keyed_cipher(material, incoming, security::ChaCha20Poly1305::Mode::open, nonce_salt_);
}

PacketOpener::PacketOpener(PacketOpener&&) noexcept = default;
PacketOpener& PacketOpener::operator=(PacketOpener&&) noexcept = default;
PacketOpener::~PacketOpener() = default;

uint64_t PacketOpener::packets_rejected() const {
  uint64_t total = 0;
  for (uint64_t count : rejected_) total += count;
  return total;
}

OpenError PacketOpener::reject(OpenError error) {
  ++rejected_[static_cast<size_t>(error)];
  return error;
}

Expected<uint64_t, OpenError> PacketOpener::check_header(ByteView packet) const {
  if (packet.size() < packet_overhead) return Unexpected(OpenError::too_short);
  if (packet.size() > max_sealed_packet_size) return Unexpected(OpenError::too_large);
  if (packet[0] != std::byte{packet_version}) return Unexpected(OpenError::bad_version);
  if (packet[1] != std::byte{static_cast<uint8_t>(direction_)}) return Unexpected(OpenError::wrong_direction);
  const uint64_t sequence = load_be64(packet.data() + 2);
  // Cheap refusals before any cryptography; they do not change the window.
  switch (window_.classify(sequence)) {
    case ReplayCheck::fresh: break;
    case ReplayCheck::replayed: return Unexpected(OpenError::replayed);
    case ReplayCheck::too_old: return Unexpected(OpenError::too_old);
  }
  return sequence;
}

Expected<size_t, OpenError> PacketOpener::open_into(ByteView packet, std::span<std::byte> out) {
  auto checked = check_header(packet);
  if (!checked) return Unexpected(reject(checked.error()));
  const uint64_t sequence = *checked;
  const size_t plaintext_size = packet.size() - packet_overhead;
  require(out.size() >= plaintext_size, "open: output buffer too small");
  require(!overlap(packet, out.first(plaintext_size)), "open: output overlaps packet");

  ByteView tag = packet.last(packet_tag_size);
  if (!aead_.open(nonce_for(nonce_salt_, sequence), {packet.first(packet_header_size), as_bytes(call_id_)},
                  packet.subspan(packet_header_size, plaintext_size),
                  std::span<const std::byte, packet_tag_size>(tag.data(), packet_tag_size), out.first(plaintext_size))) {
    // Forged or corrupted: open() left only zeros in `out`; the window stays as it was.
    return Unexpected(reject(OpenError::authentication_failed));
  }
  window_.accept(sequence);
  ++opened_;
  return plaintext_size;
}

Expected<Bytes, OpenError> PacketOpener::open(ByteView packet) {
  // Allocate only for packets whose size is plausible.
  const bool plausible = packet.size() >= packet_overhead && packet.size() <= max_sealed_packet_size;
  Bytes plaintext(plausible ? packet.size() - packet_overhead : 0);
  auto opened = open_into(packet, plaintext);
  if (!opened) return Unexpected(opened.error());
  return plaintext;
}

}  // namespace tsunagu::terminal
