// Cookies (RFC 6265): reading the Cookie header a browser sends, and writing
// Set-Cookie with the attributes a session cookie needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "web/http_message.hpp"

namespace tsunagu::web {

// "a=1; b=2" -> {{"a","1"},{"b","2"}}, in order. Pairs without '=' or with an
// empty name are skipped; values keep their bytes (surrounding double quotes
// removed). At most `max_cookies` pairs are returned.
std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header, size_t max_cookies = 64);

// The value of cookie `name` in the request's Cookie headers (the first one).
std::optional<std::string> find_cookie(const Headers& headers, std::string_view name);

struct SetCookie {
  std::string name;
  std::string value;
  std::string path = "/";
  std::optional<int64_t> max_age_seconds;  // 0 removes the cookie at once
  bool http_only = true;
  bool secure = true;
  bool same_site_strict = true;
};

// "name=value; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict". Name
// and value must be cookie tokens (no ';', ',', spaces, controls or quotes):
// nullopt otherwise, so a header can never be split by what is in it.
std::optional<std::string> format_set_cookie(const SetCookie& cookie);

// Equal contents, in time that depends on the lengths only (session
// cookies, CSRF and admin tokens). An empty `expected` matches nothing.
bool tokens_equal(std::string_view presented, std::string_view expected);

}  // namespace tsunagu::web
