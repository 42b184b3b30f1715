// HTTP/1.1 request parsing over Debian's libhttp-parser (the one file that
// includes <http_parser.h> for requests). Bytes in, whole requests out, one at
// a time: after a request is complete the parser stops until next() is called
// again, so a server answers pipelined requests in order. Every limit is
// checked while bytes arrive, so nothing grows past HttpParserLimits.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"
#include "web/http_message.hpp"

namespace tsunagu::web {

struct HttpParserLimits {
  size_t max_header_bytes = 16384;  // request line and header fields together
  size_t max_headers = 64;
  size_t max_target_bytes = 4096;
  size_t max_body_bytes = 1 << 20;  // after chunked decoding
};

// A request the server must refuse; `status` is the HTTP status to answer
// with (400, 413, 414, 417, 431, 501, 505), `detail` is for people.
struct HttpParseError {
  int status = 400;
  std::string detail;
};

class HttpRequestParser {
 public:
  explicit HttpRequestParser(HttpParserLimits limits = {});
  ~HttpRequestParser();
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Buffers bytes from the peer; nothing is parsed until next().
  void append(std::string_view bytes);
  // Parses buffered bytes up to the end of the next request: the request,
  // nullopt when more bytes are needed, or the error (sticky: every later call
  // returns it again). After an upgrade request (WebSocket) the parser stops
  // for good and the bytes after it are left for take_buffered().
  Expected<std::optional<HttpRequest>, HttpParseError> next();
  // append() then next() until no more complete requests: the requests, or
  // the first error. For tests and fuzzing; servers use next().
  Expected<std::vector<HttpRequest>, HttpParseError> feed(std::string_view bytes);

  // Bytes received but not yet parsed (pipelined requests, or the first
  // WebSocket frames after an upgrade request).
  size_t buffered() const { return buffer_.size(); }
  std::string take_buffered();
  // Part of a request has arrived but not all of it.
  bool in_request() const;
  // True once when the request being received sent "Expect: 100-continue"
  // and its headers were accepted: the server answers "100 Continue" so the
  // client sends the body. (Any other Expect value is refused with 417.)
  bool take_expect_continue();
  bool upgraded() const { return upgraded_; }
  bool failed() const { return error_.has_value(); }

 private:
  struct Callbacks;
  struct State;
  std::unique_ptr<State> state_;
  std::string buffer_;
  std::optional<HttpParseError> error_;
  bool upgraded_ = false;
};

// Percent-decodes `text` ("%2F" -> "/"); in a query `plus_is_space` turns '+'
// into ' '. nullopt on an invalid escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// False when a decoded path could leave the folder it names: a "." or ".."
// segment, a backslash, a NUL, or no leading '/'. Handlers that map paths to
// files must check it; the parser keeps such paths as they are.
bool path_is_safe(std::string_view path);

}  // namespace tsunagu::web
