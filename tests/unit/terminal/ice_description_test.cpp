// The ICE-DESCRIPTION codec: it reads what the other party sent through the
// node, so every malformed shape must fail with a reason, never crash.
#include "terminal/ice_description.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace tsunagu::terminal {
namespace {

IceDescription sample_description() {
  return IceDescription{"AbCd", "0123456789abcdefABCDEF+/",
                        {"a=candidate:1 1 UDP 2013266431 127.0.0.1 40000 typ host",
                         "a=candidate:2 1 UDP 16777215 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40000"}};
}

}  // namespace

TEST_CASE("ice description: encode then decode gives the same description") {
  auto description = sample_description();
  auto text = encode_ice_description(description);
  REQUIRE(text.has_value());
  CHECK(text->substr(0, 5) == "ice1 ");
  auto back = decode_ice_description(*text);
  REQUIRE(back.has_value());
  CHECK(*back == description);
  // One trailing newline is tolerated.
  auto with_newline = decode_ice_description(*text + "\n");
  REQUIRE(with_newline.has_value());
  CHECK(*with_newline == description);
  // No candidates at all is a valid (if useless) description.
  description.candidates.clear();
  auto bare = decode_ice_description(*encode_ice_description(description));
  REQUIRE(bare.has_value());
  CHECK(bare->candidates.empty());
}

TEST_CASE("ice description: malformed input is rejected with a reason") {
  const char* bad[] = {
      "",
      "ice1",
      "ice1 AbCd",
      "ice2 AbCd 0123456789abcdefABCDEF",
      "ice1 AbCd 0123456789abcdefABCDEF extra",
      "ice1  AbCd 0123456789abcdefABCDEF",
      "ice1 Ab 0123456789abcdefABCDEF",            // ufrag too short
      "ice1 AbCd short",                           // password too short
      "ice1 Ab-d 0123456789abcdefABCDEF",          // '-' is not an ice-char
      "ice1 AbCd 0123456789abcdefABCDEF\nfoo",     // not a candidate line
      "ice1 AbCd 0123456789abcdefABCDEF\n",        // fine (trailing newline) -- checked below
      "ice1 AbCd 0123456789abcdefABCDEF\n\n",      // an empty candidate line
      "ice1 AbCd 0123456789abcdefABCDEF\na=candidate:1 1 UDP 1 127.0.0.1 1 typ host\r",
      "ice1 AbCd 0123456789abcdefABCDEF\na=candidate:1 1 UDP 1 \x01 1 typ host",
      "ice1 AbCd 0123456789abcdefABCDEF\na=candidate:1 1 UDP 1 \xc3\xa9 1 typ host",
  };
  for (const char* text : bad) {
    auto result = decode_ice_description(text);
    if (std::string_view(text) == "ice1 AbCd 0123456789abcdefABCDEF\n") {
      CHECK(result.has_value());
      continue;
    }
    CHECK_MESSAGE(!result.has_value(), std::string(text));
    if (!result.has_value()) CHECK(!result.error().empty());
  }
}

TEST_CASE("ice description: oversized input and too many candidates are rejected") {
  std::string huge = *encode_ice_description(sample_description());
  huge.append("\na=candidate:").append(max_ice_description_size, 'x');
  auto result = decode_ice_description(huge);
  REQUIRE(!result.has_value());
  CHECK(result.error() == "description too long");

  std::string long_line = "ice1 AbCd 0123456789abcdefABCDEF\na=candidate:" + std::string(max_ice_candidate_line, '1');
  CHECK(!decode_ice_description(long_line).has_value());

  std::string many = "ice1 AbCd 0123456789abcdefABCDEF";
  for (size_t i = 0; i <= max_ice_candidates; ++i) many += "\na=candidate:1 1 UDP 1 127.0.0.1 1 typ host";
  auto too_many = decode_ice_description(many);
  REQUIRE(!too_many.has_value());
  CHECK(too_many.error() == "too many candidates");

  IceDescription description = sample_description();
  description.candidates.assign(max_ice_candidates + 1, description.candidates[0]);
  CHECK(!encode_ice_description(description).has_value());
  description.candidates = {"not a candidate"};
  CHECK(!encode_ice_description(description).has_value());
}

TEST_CASE("ice description: every prefix and every flipped byte decodes or fails cleanly") {
  std::string text = *encode_ice_description(sample_description());
  for (size_t n = 0; n < text.size(); ++n) {
    auto result = decode_ice_description(std::string_view(text).substr(0, n));
    if (result.has_value()) CHECK(encode_ice_description(*result).has_value());
  }
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = text;
    mutated[random() % mutated.size()] = static_cast<char>(random() & 0xff);
    auto result = decode_ice_description(mutated);
    if (result.has_value()) CHECK(encode_ice_description(*result).has_value());
  }
}

}  // namespace tsunagu::terminal
