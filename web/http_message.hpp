// HTTP/1.1 requests and responses as plain values: what the parser
// (http_request_parser.hpp) produces, what handlers (the node's and the
// agent's web API) take and return, and what the server (http_server.hpp)
// writes. No sockets, no JSON: the shared vocabulary of web/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsunagu::web {

// ASCII letters compared without case (header names, tokens).
bool equals_ignoring_case(std::string_view a, std::string_view b);

// Header names are stored lower-cased; values as received (surrounding
// whitespace trimmed). A repeated header keeps every occurrence.
struct Headers {
  std::vector<std::pair<std::string, std::string>> entries;

  // The first value of `name` (compared case-insensitively), or nullptr.
  const std::string* find(std::string_view name) const;
  void add(std::string name, std::string value);
  bool contains(std::string_view name) const;
  // Replaces every occurrence of `name` with one entry.
  void set(std::string name, std::string value);
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent (http-parser's names)
  std::string target;  // the request target as sent: "/api/lookup?id=alice"
  std::string path;    // percent-decoded path without the query: "/api/lookup"
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  Headers headers;
  std::string body;
  bool keep_alive = true;  // HTTP/1.1 default, "Connection: close" or 1.0 clears it
  bool upgrade = false;    // "Connection: Upgrade" (a WebSocket handshake when "Upgrade: websocket")
  std::string client_address;  // "203.0.113.7:51234" (filled in by the server)

  // The first value of query parameter `name`, or nullptr.
  const std::string* query_value(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;  // Content-Length and Date are added by serialize_response()
  std::string body;
};

// "HTTP/1.1 <status> <reason>\r\n" + headers + Content-Length + body. When
// `keep_alive` is false a "Connection: close" header is added. For HEAD
// requests pass `head_only` to omit the body but keep its length.
std::string serialize_response(const HttpResponse& response, bool keep_alive, bool head_only = false);

// The standard reason phrase ("Not Found"), or "Unknown".
std::string_view reason_phrase(int status);

}  // namespace tsunagu::web
