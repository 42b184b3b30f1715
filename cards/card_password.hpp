// The card password (seed 002, claims 2-3, [0029]): derived from the card ID
// with the issuer's secret, so the issuer can print it on the card without
// keeping a list, and stored on the node only as a slow hash.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "cards/card.hpp"
#include "security/passwords.hpp"

namespace tsunagu::cards {

inline constexpr size_t min_issuer_secret_size = 32;

// Twelve digits in groups of four ("0412-7730-0159"): typed on a phone's
// keypad. HMAC-SHA256(secret, "tsunagu card password 1" 0x00 card ID text),
// its first 8 bytes as a number modulo 10^12 (bias below 10^-7). The secret
// must be at least min_issuer_secret_size bytes (a bug otherwise: aborts).
std::string derive_card_password(ByteView issuer_secret, const CardId& card_id);

// The password as compared: digits and letters only, so "0412 7730 0159"
// and "041277300159" match the printed "0412-7730-0159".
std::string normalized_card_password(std::string_view typed);

// A password the holder chooses (seed 002 [0030]) is compared the same way,
// so it needs at least this many letters and digits.
inline constexpr size_t min_holder_password_size = 8;
// Why `typed` cannot be a holder's card password, or nullptr when it can:
// fewer than min_holder_password_size letters and digits, or more than
// `max_bytes` bytes as typed.
const char* holder_password_problem(std::string_view typed, size_t max_bytes);

// scrypt (security/passwords.hpp) of the normalized password.
std::string hash_card_password(std::string_view typed, const security::ScryptParameters& parameters = {});
bool check_card_password(std::string_view typed, std::string_view stored_hash);

}  // namespace tsunagu::cards
