// Session-resumption tokens: a login in one round trip for a terminal that
// logged in by SCRAM before and lost its link (a network change, a node
// restart). The node hands one out with every successful login; the terminal
// keeps it in memory and presents it, with its user ID, on its next
// connection (docs/protocol.md, login_resume; docs/security.md, "Session
// resumption tokens").
//
// Nothing is stored per token: it carries its expiry and the account's
// generation, under an HMAC keyed by a secret of the account store and bound
// to the user ID. So a token of one account is useless for another, a token
// past its expiry is refused, and removing the account or changing its
// password (both move the account's generation on) revokes every token it
// was given. The node checks the generation against the account's.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::security::resume_token {

inline constexpr uint8_t version = 1;
inline constexpr size_t random_size = 16;
inline constexpr size_t mac_size = 32;
// version, expiry (u64), generation (u64), random, MAC: every token has this size.
inline constexpr size_t token_size = 1 + 8 + 8 + random_size + mac_size;
inline constexpr size_t max_user_id_size = 256;

// What a valid token says; the caller compares the generation with the account's.
struct Claims {
  uint64_t expires_unix = 0;
  uint64_t generation = 0;
};

enum class Refusal {
  malformed,  // wrong size or version
  forged,     // the MAC does not match this key and user ID (another account's token, a tampered one)
  expired,
};
std::string_view to_string(Refusal refusal);

// The token key from a store secret (the SCRAM dummy-salt secret, shared by
// nodes sharing accounts), so tokens survive a restart and work on every node
// of a cluster. A label keeps it apart from the secret's other use.
Bytes derive_key(ByteView store_secret);

// `random` is random_size fresh random bytes (the caller's generator).
Bytes issue(ByteView key, std::string_view user_id, uint64_t generation, uint64_t expires_unix, ByteView random);

// Constant-time MAC check. Expired when now_unix >= expires_unix.
Expected<Claims, Refusal> check(ByteView key, ByteView token, std::string_view user_id, uint64_t now_unix);

}  // namespace tsunagu::security::resume_token
