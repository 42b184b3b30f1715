// Cryptographic randomness (OpenSSL's RAND_bytes) and the wiping of secrets,
// so that code outside security/ needs no OpenSSL header.
#pragma once

#include <cstddef>
#include <span>

#include "base/bytes.hpp"

namespace tsunagu::security {

// Aborts if the generator fails: nothing sensible can continue without it.
void random_bytes(std::span<std::byte> out);
Bytes random_bytes(size_t count);

// Overwrites `secret` with zeros in a way the compiler may not optimise away.
void wipe(std::span<std::byte> secret);

}  // namespace tsunagu::security
