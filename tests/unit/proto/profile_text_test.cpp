// Text other people are shown (display names, categories): what the node
// stores and what the terminal prints (proto/profile_change.hpp).
#include <doctest/doctest.h>

#include <string>

#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"

using namespace tsunagu::proto;

TEST_CASE("names in any script, with emoji sequences, are text") {
  CHECK(valid_profile_text("Alice Aoki", 128));
  CHECK(valid_profile_text("青木 アリス", 128));
  CHECK(valid_profile_text("Zoë Ð ש ع", 128));
  CHECK(valid_profile_text("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB", 128));  // 👩‍💻: the joiner stays
  CHECK(valid_profile_text("", 128));
}

TEST_CASE("controls, bidirectional formatting and separators are refused") {
  CHECK_FALSE(valid_profile_text("a\x1b[2Jb", 128));                 // C0: a terminal's escape
  CHECK_FALSE(valid_profile_text("a\x7f", 128));                      // DEL
  CHECK_FALSE(valid_profile_text("a\xC2\x9B" "2J", 128));             // U+009B, C1 CSI
  CHECK_FALSE(valid_profile_text("a\xC2\x85" "b", 128));              // U+0085 NEL
  CHECK_FALSE(valid_profile_text("\xE2\x80\xAE" "ecila", 128));       // U+202E RIGHT-TO-LEFT OVERRIDE
  CHECK_FALSE(valid_profile_text("\xE2\x81\xA6" "x", 128));           // U+2066 LEFT-TO-RIGHT ISOLATE
  CHECK_FALSE(valid_profile_text("\xE2\x80\x8F" "x", 128));           // U+200F RIGHT-TO-LEFT MARK
  CHECK_FALSE(valid_profile_text("\xD8\x9C" "x", 128));               // U+061C ARABIC LETTER MARK
  CHECK_FALSE(valid_profile_text("a\xE2\x80\xA8" "b", 128));          // U+2028 LINE SEPARATOR
}

TEST_CASE("malformed UTF-8 is refused") {
  CHECK_FALSE(valid_profile_text("a\x9b", 128));                      // a lone continuation byte
  CHECK_FALSE(valid_profile_text("\xC0\xAF", 128));                   // an overlong '/'
  CHECK_FALSE(valid_profile_text("\xED\xA0\x80", 128));               // a surrogate, U+D800
  CHECK_FALSE(valid_profile_text("\xE3\x81", 128));                   // cut short
  CHECK_FALSE(valid_profile_text("\xF4\x90\x80\x80", 128));           // above U+10FFFF
}

TEST_CASE("the size limit counts bytes") {
  CHECK(valid_profile_text(std::string(max_display_name_size, 'a'), max_display_name_size));
  CHECK_FALSE(valid_profile_text(std::string(max_display_name_size + 1, 'a'), max_display_name_size));
  std::string kana;
  for (int i = 0; i < 43; ++i) kana += "ア";  // 3 bytes each: 129
  CHECK_FALSE(valid_profile_text(kana, max_display_name_size));
}

TEST_CASE("printable_text keeps text and replaces what is not") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(printable_text("青木 アリス") == "青木 アリス");
  CHECK(printable_text("a\x1b]0;owned\x07z") == "a" + fffd + "]0;owned" + fffd + "z");
  CHECK(printable_text("\xE2\x80\xAE" "ecila") == fffd + "ecila");
  CHECK(printable_text("a\x9b" "b") == "a" + fffd + "b");
  CHECK(printable_text("a\xC2\x9B" "b") == "a" + fffd + "b");
  CHECK(printable_text(fffd) == fffd);  // a real U+FFFD is kept as it is
}

TEST_CASE("json_string escapes so the output stays JSON and text") {
  CHECK(json_string("say \"hi\" \\ now") == "\"say \\\"hi\\\" \\\\ now\"");
  CHECK(json_string("a\nb\x01") == "\"a\\u000ab\\u0001\"");
  CHECK(json_string("\xE2\x80\xAE" "x") == "\"\\u202ex\"");
  CHECK(json_string("a\xC2\x85") == "\"a\\u0085\"");
  CHECK(json_string("a\xff" "b") == "\"a\xEF\xBF\xBD" "b\"");  // malformed: U+FFFD, so the output is UTF-8
  CHECK(json_string("青木") == "\"青木\"");
}
