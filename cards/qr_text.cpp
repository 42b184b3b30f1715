#include "cards/qr_text.hpp"

#include "cards/base45.hpp"

namespace tsunagu::cards {

std::string encode_qr_text(ByteView card_bytes) { return std::string(qr_text_prefix) + base45_encode(card_bytes); }

Expected<Bytes, QrTextError> decode_qr_text(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.size() > max_qr_text_size) return Unexpected(QrTextError{QrTextErrc::too_large, "above 16 KiB of card"});
  if (!text.starts_with(qr_text_prefix))
    return Unexpected(QrTextError{QrTextErrc::not_a_card, "the text does not start with TSU1:"});
  auto bytes = base45_decode(text.substr(qr_text_prefix.size()));
  if (!bytes) return Unexpected(QrTextError{QrTextErrc::bad_base45, "the text after TSU1: is not Base45"});
  return std::move(*bytes);
}

}  // namespace tsunagu::cards
