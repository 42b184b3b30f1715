// security/resume_token: what a token binds (user ID, generation, expiry,
// the key) and what the checker refuses. The node's use of it (generation
// against the account, the audit line) is in tests/unit/rendezvous/node_core_test.cpp.
#include "security/resume_token.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string_view>

#include "security/random.hpp"

using namespace tsunagu;
namespace token = tsunagu::security::resume_token;

namespace {
const uint64_t now = 1'800'000'000;
Bytes key_of(std::string_view secret) { return token::derive_key(as_bytes(secret)); }
Bytes fresh_random() { return security::random_bytes(token::random_size); }
// The refusal, or nullopt when the token checked (so a wrong pass fails a CHECK, not an assertion).
std::optional<token::Refusal> refusal(const Expected<token::Claims, token::Refusal>& checked) {
  if (checked) return std::nullopt;
  return checked.error();
}
}  // namespace

TEST_CASE("resume token: a token checks for its user ID and key, carrying its generation and expiry") {
  Bytes key = key_of("store secret one");
  Bytes t = token::issue(key, "alice", 7, now + 3600, fresh_random());
  CHECK(t.size() == token::token_size);
  auto claims = token::check(key, t, "alice", now);
  REQUIRE(claims.has_value());
  CHECK(claims->generation == 7);
  CHECK(claims->expires_unix == now + 3600);
  // Two tokens for the same login state differ (their random part).
  CHECK(token::issue(key, "alice", 7, now + 3600, fresh_random()) != t);
}

TEST_CASE("resume token: another account's ID, another store's key, or a changed byte: forged") {
  Bytes key = key_of("store secret one");
  Bytes t = token::issue(key, "alice", 7, now + 3600, fresh_random());
  CHECK(refusal(token::check(key, t, "bob", now)) == token::Refusal::forged);
  CHECK(refusal(token::check(key, t, "alic", now)) == token::Refusal::forged);
  CHECK(refusal(token::check(key, t, std::string_view("alice\0", 6), now)) == token::Refusal::forged);
  CHECK(refusal(token::check(key_of("store secret two"), t, "alice", now)) == token::Refusal::forged);
  // The key is derived, not the secret itself.
  CHECK(refusal(token::check(as_bytes(std::string_view("store secret one")), t, "alice", now)) ==
        token::Refusal::forged);
  for (size_t i = 1; i < t.size(); ++i) {
    Bytes tampered = t;
    tampered[i] ^= std::byte{0x01};
    CHECK_MESSAGE(refusal(token::check(key, tampered, "alice", now)) == token::Refusal::forged, "byte ", i);
  }
  // A later expiry or another generation written into the token: forged.
  Bytes later = t;
  store_be64(later.data() + 1, now + 365 * 86400);
  CHECK(refusal(token::check(key, later, "alice", now)) == token::Refusal::forged);
}

TEST_CASE("resume token: expired at its expiry second and after") {
  Bytes key = key_of("s");
  Bytes t = token::issue(key, "alice", 1, now + 10, fresh_random());
  CHECK(token::check(key, t, "alice", now + 9).has_value());
  CHECK(refusal(token::check(key, t, "alice", now + 10)) == token::Refusal::expired);
  CHECK(refusal(token::check(key, t, "alice", now + 86400)) == token::Refusal::expired);
}

TEST_CASE("resume token: wrong size, wrong version, an oversized user ID: malformed") {
  Bytes key = key_of("s");
  Bytes t = token::issue(key, "alice", 1, now + 10, fresh_random());
  CHECK(refusal(token::check(key, ByteView(t.data(), t.size() - 1), "alice", now)) == token::Refusal::malformed);
  Bytes longer = t;
  longer.push_back(std::byte{0});
  CHECK(refusal(token::check(key, longer, "alice", now)) == token::Refusal::malformed);
  CHECK(refusal(token::check(key, {}, "alice", now)) == token::Refusal::malformed);
  Bytes v2 = t;
  v2[0] = std::byte{2};
  CHECK(refusal(token::check(key, v2, "alice", now)) == token::Refusal::malformed);
  CHECK(refusal(token::check(key, t, std::string(token::max_user_id_size + 1, 'a'), now)) ==
        token::Refusal::malformed);
}
