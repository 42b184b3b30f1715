// Password storage: scrypt from OpenSSL with a random 16-byte salt, encoded as
//   $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<hash base64>
// so the parameters can be raised later without breaking stored hashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tsunagu::security {

struct ScryptParameters {
  unsigned log2_n = 15;  // N = 32768: ~32 MiB and tens of ms per hash
  unsigned r = 8;
  unsigned p = 1;
};

// Parameters must be within what verify_password accepts (1 <= log2_n <= 20,
// r*p <= 64, 128*r*N <= 256 MiB); others are a bug and abort.
std::string hash_password(std::string_view password, const ScryptParameters& parameters = {});
// Constant-time comparison; false for a malformed encoding too, and for
// parameters outside the limits above (a tampered store cannot exhaust memory).
bool verify_password(std::string_view password, std::string_view encoded);

}  // namespace tsunagu::security
