#include "web/cookies.hpp"

namespace tsunagu::web {
namespace {

std::string_view trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

bool is_token_char(char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':': case '\\': case '"':
    case '/': case '[': case ']': case '?': case '=': case '{': case '}':
      return false;
    default:
      return true;
  }
}

// RFC 6265 cookie-octet: printable ASCII without space, '"', ',', ';' or '\'.
bool is_cookie_octet(char c) { return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\'; }

bool all_of(std::string_view text, bool (*predicate)(char)) {
  for (char c : text)
    if (!predicate(c)) return false;
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header, size_t max_cookies) {
  std::vector<std::pair<std::string, std::string>> cookies;
  while (!header.empty() && cookies.size() < max_cookies) {
    size_t semicolon = header.find(';');
    std::string_view pair = header.substr(0, semicolon);
    header = semicolon == std::string_view::npos ? std::string_view{} : header.substr(semicolon + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trim(pair.substr(0, eq));
    std::string_view value = trim(pair.substr(eq + 1));
    if (name.empty()) continue;
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    cookies.emplace_back(std::string(name), std::string(value));
  }
  return cookies;
}

std::optional<std::string> find_cookie(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers.entries) {
    if (key != "cookie") continue;
    for (auto& [cookie_name, cookie_value] : parse_cookie_header(value))
      if (cookie_name == name) return cookie_value;
  }
  return std::nullopt;
}

std::optional<std::string> format_set_cookie(const SetCookie& cookie) {
  if (cookie.name.empty() || !all_of(cookie.name, is_token_char) || !all_of(cookie.value, is_cookie_octet))
    return std::nullopt;
  for (char c : cookie.path)
    if (c < 0x20 || c >= 0x7f || c == ';') return std::nullopt;
  std::string out = cookie.name + "=" + cookie.value;
  if (!cookie.path.empty()) out += "; Path=" + cookie.path;
  if (cookie.max_age_seconds) out += "; Max-Age=" + std::to_string(*cookie.max_age_seconds);
  if (cookie.http_only) out += "; HttpOnly";
  if (cookie.secure) out += "; Secure";
  if (cookie.same_site_strict) out += "; SameSite=Strict";
  return out;
}

bool tokens_equal(std::string_view presented, std::string_view expected) {
  if (expected.empty()) return false;
  unsigned char difference = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    difference |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
  }
  return difference == 0;
}

}  // namespace tsunagu::web
