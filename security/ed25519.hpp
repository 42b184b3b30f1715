// Ed25519 signatures (RFC 8032) through OpenSSL: key generation, signing and
// verification on raw 32-byte keys, so callers (cards/) hold plain bytes.
#pragma once

#include "base/bytes.hpp"

namespace tsunagu::security {

inline constexpr size_t ed25519_key_size = 32;        // private seed and public key alike
inline constexpr size_t ed25519_signature_size = 64;

struct Ed25519KeyPair {
  Bytes private_key;  // the 32-byte seed; wipe() it when done
  Bytes public_key;   // 32 bytes
};

// Aborts if OpenSSL cannot make a key (out of memory, broken install).
Ed25519KeyPair generate_ed25519_key();
// The public key of a 32-byte private seed; empty if the seed is not 32 bytes.
Bytes ed25519_public_key(ByteView private_key);
// A 64-byte signature; empty if the private key is not 32 bytes.
Bytes ed25519_sign(ByteView private_key, ByteView message);
// False for a wrong signature, and for a key or signature of the wrong size.
bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature);

}  // namespace tsunagu::security
