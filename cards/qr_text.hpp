// The text a card's QR code holds: "TSU1:" followed by Base45 of the .card
// bytes. The prefix names the format, so a scanner can tell a card from any
// other QR code and a later format can use "TSU2:".
#pragma once

#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "cards/card_codec.hpp"

namespace tsunagu::cards {

inline constexpr std::string_view qr_text_prefix = "TSU1:";
// Base45 of max_card_size bytes, plus the prefix.
inline constexpr size_t max_qr_text_size = qr_text_prefix.size() + (max_card_size + 1) / 2 * 3;

enum class QrTextErrc { too_large, not_a_card, bad_base45 };
struct QrTextError {
  QrTextErrc code;
  const char* detail;
};

std::string encode_qr_text(ByteView card_bytes);
// The .card bytes; decode_card() checks them. A trailing newline (as zbarimg
// prints) is tolerated.
Expected<Bytes, QrTextError> decode_qr_text(std::string_view text);

}  // namespace tsunagu::cards
