// HKDF with SHA-256 (RFC 5869): extract-then-expand in one call.
#pragma once

#include <cstddef>
#include <span>

#include "base/bytes.hpp"

namespace tsunagu::security {

inline constexpr size_t hkdf_sha256_max_output = 255 * 32;  // RFC 5869: 255 * HashLen

// Fills `out` (1..hkdf_sha256_max_output bytes, a bug otherwise) with the
// output keying material. An empty salt stands for HashLen zero bytes, as in
// the RFC. Aborts only if OpenSSL cannot run HKDF (out of memory, broken
// install): callers derive keys they cannot do without.
void hkdf_sha256(ByteView input_key, ByteView salt, ByteView info, std::span<std::byte> out);

}  // namespace tsunagu::security
