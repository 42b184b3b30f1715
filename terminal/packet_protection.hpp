// Data-plane packet protection: every media/data packet of a call is sealed
// with ChaCha20-Poly1305 under a key for its direction, and opened with a
// replay window. Pure: no sockets, no clock, no logging.
//
// Keys. The node hands both ends of a call 32 random bytes and the call ID
// over TLS (CallKeyMaterial). For each direction, HKDF-SHA256 (RFC 5869) with
//   IKM  = the 32-byte secret
//   salt = the call ID (its bytes as sent, no terminator)
//   info = "tsunagu v1 caller_to_callee" or "tsunagu v1 callee_to_caller"
// yields 36 bytes: bytes 0..31 are the key, bytes 32..35 the nonce salt. The
// top bit of the nonce salt's first byte is then forced to 0 for
// caller_to_callee and 1 for callee_to_caller, so the two directions' nonces
// differ by construction (their keys differ too; this makes the "never the
// same nonce" property not depend on the hash).
//
// Packet, byte by byte (all integers big endian):
//   0        version          1
//   1        direction        1 = caller_to_callee, 2 = callee_to_caller
//   2..9     sequence number  0, 1, 2, ... per direction, never reused
//   10..n-17 ciphertext       same length as the plaintext (0..65536 bytes)
//   n-16..   tag              Poly1305, 16 bytes
// Nonce (12 bytes) = nonce salt (4) || sequence number (8).
// Associated data = the 10 header bytes || the call ID, so a packet from
// another call or for the other direction fails authentication even if two
// calls' keys collided or the direction byte were rewritten.
//
// Use: each end makes one PacketSealer for the direction it sends and one
// PacketOpener for the direction it receives. There must never be two sealers
// for the same call and direction: both would count from 0 and reuse nonces.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "security/aead.hpp"
#include "terminal/replay_window.hpp"

namespace tsunagu::terminal {

struct CallKeyMaterial {
  std::array<std::byte, 32> secret;
  std::string call_id;
};

enum class Direction : uint8_t { caller_to_callee = 1, callee_to_caller = 2 };
std::string_view to_string(Direction direction);  // "caller_to_callee", ...

inline constexpr uint8_t packet_version = 1;
inline constexpr size_t packet_header_size = 10;
inline constexpr size_t packet_tag_size = 16;
inline constexpr size_t packet_overhead = packet_header_size + packet_tag_size;
inline constexpr size_t max_packet_plaintext = 64 * 1024;
inline constexpr size_t max_sealed_packet_size = max_packet_plaintext + packet_overhead;
inline constexpr size_t sealed_size(size_t plaintext_size) { return plaintext_size + packet_overhead; }

// One direction's keys, as described above. Exposed for tests and tools.
struct DirectionKeys {
  std::array<std::byte, 32> key;
  std::array<std::byte, 4> nonce_salt;
};
// Aborts only if HKDF cannot run (out of memory, broken OpenSSL install).
DirectionKeys derive_direction_keys(const CallKeyMaterial& material, Direction direction);
std::array<std::byte, 12> packet_nonce(const DirectionKeys& keys, uint64_t sequence);

class PacketSealer {
 public:
  PacketSealer(const CallKeyMaterial& material, Direction outgoing);
  // Only for tests of nonce exhaustion: the first packet gets `first_sequence`.
  static PacketSealer starting_at_for_testing(const CallKeyMaterial& material, Direction outgoing,
                                              uint64_t first_sequence);
  PacketSealer(PacketSealer&&) noexcept;
  PacketSealer& operator=(PacketSealer&&) noexcept;
  ~PacketSealer();

  // Seals `plaintext` into `out`, which must hold sealed_size(plaintext.size())
  // bytes and must not overlap `plaintext`; returns the bytes written.
  // Plaintext over max_packet_plaintext, a short `out`, or a sealer that has
  // used its last sequence number (2^64 - 2) are bugs and abort: a nonce is
  // never reused.
  size_t seal_into(ByteView plaintext, std::span<std::byte> out);
  Bytes seal(ByteView plaintext);

  Direction direction() const { return direction_; }
  uint64_t packets_sealed() const { return next_sequence_ - first_sequence_; }
  // Sequence numbers left before the sealer refuses (aborts).
  uint64_t remaining() const { return last_sequence - next_sequence_ + 1; }

 private:
  // UINT64_MAX is never used, so "next" can always be represented.
  static constexpr uint64_t last_sequence = UINT64_MAX - 1;

  PacketSealer(const CallKeyMaterial& material, Direction outgoing, uint64_t first_sequence);

  security::ChaCha20Poly1305 aead_;
  std::array<std::byte, 4> nonce_salt_{};
  std::string call_id_;
  Direction direction_;
  uint64_t first_sequence_;
  uint64_t next_sequence_;
};

enum class OpenError : uint8_t {
  too_short,              // shorter than header + tag
  too_large,              // ciphertext over max_packet_plaintext
  bad_version,            // version byte is not packet_version
  wrong_direction,        // direction byte is not the one this opener receives
  replayed,               // this sequence number was already accepted
  too_old,                // sequence number below the replay window
  authentication_failed,  // tag mismatch: corrupted, forged, other call or key
};
inline constexpr size_t open_error_count = 7;
std::string_view to_string(OpenError error);

class PacketOpener {
 public:
  PacketOpener(const CallKeyMaterial& material, Direction incoming);
  PacketOpener(PacketOpener&&) noexcept;
  PacketOpener& operator=(PacketOpener&&) noexcept;
  ~PacketOpener();

  // Checks size, version, direction and the replay window, then authenticates
  // and decrypts; only an authentic packet moves the replay window. On
  // success writes the plaintext (packet size - packet_overhead bytes) to the
  // start of `out` and returns its size; `out` must hold that many bytes (a
  // bug otherwise: aborts) and must not overlap `packet`. On failure `out` holds
  // no unauthenticated plaintext.
  Expected<size_t, OpenError> open_into(ByteView packet, std::span<std::byte> out);
  Expected<Bytes, OpenError> open(ByteView packet);

  Direction direction() const { return direction_; }
  uint64_t packets_opened() const { return opened_; }
  uint64_t packets_rejected(OpenError error) const { return rejected_[static_cast<size_t>(error)]; }
  uint64_t packets_rejected() const;
  const ReplayWindow& replay_window() const { return window_; }

 private:
  // Everything but the decryption: returns the sequence number.
  Expected<uint64_t, OpenError> check_header(ByteView packet) const;
  OpenError reject(OpenError error);

  security::ChaCha20Poly1305 aead_;
  std::array<std::byte, 4> nonce_salt_{};
  std::string call_id_;
  Direction direction_;
  ReplayWindow window_;
  uint64_t opened_ = 0;
  std::array<uint64_t, open_error_count> rejected_{};
};

}  // namespace tsunagu::terminal
