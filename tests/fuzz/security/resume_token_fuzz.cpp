// Fuzz target: the resume-token check (a login_resume request's RESUME-TOKEN
// comes from the network). The first byte picks the user ID's length; the
// rest is the token. Nothing but a token issue() made under the same key may
// pass, and a token that passes must come back unchanged from issue().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "security/resume_token.hpp"

using namespace tsunagu;
namespace token = tsunagu::security::resume_token;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const Bytes key = token::derive_key(as_bytes(std::string_view("fuzz store secret")));
  size_t user_size = std::min<size_t>(data[0] % 32, size - 1);
  std::string_view user(reinterpret_cast<const char*>(data + 1), user_size);
  ByteView rest(reinterpret_cast<const std::byte*>(data + 1 + user_size), size - 1 - user_size);
  auto claims = token::check(key, rest, user, 0);
  if (claims) {
    // Only possible by finding an HMAC-SHA256 collision: then it must be a real token.
    Bytes again = token::issue(key, user, claims->generation, claims->expires_unix,
                               rest.subspan(17, token::random_size));
    if (!std::equal(again.begin(), again.end(), rest.begin(), rest.end())) std::abort();
  }
  // A token issued for this user checks, and one changed in its MAC does not.
  if (rest.size() >= token::random_size) {
    Bytes made = token::issue(key, user, 3, 100, rest.subspan(0, token::random_size));
    if (!token::check(key, made, user, 99)) std::abort();
    made.back() ^= std::byte{1};
    if (token::check(key, made, user, 99)) std::abort();
  }
  return 0;
}
