// Base45 (RFC 9285): bytes as text in the QR alphanumeric alphabet, so a QR
// code holds them in alphanumeric mode (5.5 bits a character).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"

namespace tsunagu::cards {

std::string base45_encode(ByteView bytes);
// nullopt for a character outside the alphabet, a trailing single character,
// or a group whose value is above what it may encode (RFC 9285 section 4.2).
std::optional<Bytes> base45_decode(std::string_view text);

}  // namespace tsunagu::cards
