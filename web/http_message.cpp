#include "web/http_message.hpp"

#include <http_parser.h>

#include <cstring>
#include <ctime>

namespace tsunagu::web {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

namespace {

// RFC 9110's IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  size_t length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text, length);
}

}  // namespace

const std::string* Headers::find(std::string_view name) const {
  for (const auto& [key, value] : entries)
    if (equals_ignoring_case(key, name)) return &value;
  return nullptr;
}

void Headers::add(std::string name, std::string value) {
  for (auto& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  entries.emplace_back(std::move(name), std::move(value));
}

bool Headers::contains(std::string_view name) const { return find(name) != nullptr; }

void Headers::set(std::string name, std::string value) {
  for (auto it = entries.begin(); it != entries.end();) {
    if (equals_ignoring_case(it->first, name)) it = entries.erase(it);
    else ++it;
  }
  add(std::move(name), std::move(value));
}

const std::string* HttpRequest::query_value(std::string_view name) const {
  for (const auto& [key, value] : query)
    if (key == name) return &value;
  return nullptr;
}

std::string_view reason_phrase(int status) {
  const char* text = http_status_str(static_cast<enum http_status>(status));
  if (text == nullptr || text[0] == '<') return "Unknown";
  return text;
}

std::string serialize_response(const HttpResponse& response, bool keep_alive, bool head_only) {
  std::string out;
  out.reserve(256 + response.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\n";
  bool has_date = false;
  bool has_connection = false;
  for (const auto& [name, value] : response.headers.entries) {
    // The length is ours to state: a handler's own could contradict the body.
    if (equals_ignoring_case(name, "content-length")) continue;
    if (equals_ignoring_case(name, "date")) has_date = true;
    if (equals_ignoring_case(name, "connection")) has_connection = true;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!has_date) out += "date: " + http_date() + "\r\n";
  // 1xx and 204 carry no body and no length (RFC 9110 8.6).
  bool bodyless = (response.status >= 100 && response.status < 200) || response.status == 204;
  if (!bodyless) out += "content-length: " + std::to_string(response.body.size()) + "\r\n";
  if (!keep_alive && !has_connection) out += "connection: close\r\n";
  out += "\r\n";
  if (!head_only && !bodyless) out += response.body;
  return out;
}

}  // namespace tsunagu::web
