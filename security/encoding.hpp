// Base64 (RFC 4648) as used in stored password hashes, credentials and keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"

namespace tsunagu::security {

std::string base64_encode(ByteView data);
// Strict RFC 4648 (standard alphabet, '=' padding required, no whitespace,
// zero unused bits); nullopt otherwise.
std::optional<Bytes> base64_decode(std::string_view text);

}  // namespace tsunagu::security
