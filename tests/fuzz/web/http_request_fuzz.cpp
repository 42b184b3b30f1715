// Fuzz target: the HTTP request parser fed in pieces. Input layout:
//   byte 0      number of chunk-size bytes that follow (low 4 bits, plus 1)
//   byte 1      limits: 0 = the defaults, else small limits scaled by it
//   chunk sizes one byte each, used in turn (0 is an empty append)
//   the rest    the stream
// Pieces must give the same requests, and fail where the whole stream at
// once fails, and nothing may exceed the limits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "web/http_request_parser.hpp"

using namespace tsunagu::web;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::vector<HttpRequest> requests;
  bool failed = false;
  int status = 0;
};

void check(const HttpRequest& request, const HttpParserLimits& limits) {
  require(request.body.size() <= limits.max_body_bytes);
  require(request.headers.entries.size() <= limits.max_headers);
  require(request.target.size() <= limits.max_target_bytes);
  require(!request.path.empty() && request.path[0] == '/');
  require(request.path.find('\0') == std::string::npos);
  for (const auto& [name, value] : request.headers.entries) {
    require(!name.empty());
    for (char c : name) require(!(c >= 'A' && c <= 'Z'));
  }
  (void)path_is_safe(request.path);
}

bool same(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.headers.entries == b.headers.entries && a.body == b.body && a.keep_alive == b.keep_alive &&
         a.upgrade == b.upgrade;
}

void drain(HttpRequestParser& parser, Outcome& out, const HttpParserLimits& limits) {
  for (;;) {
    auto next = parser.next();
    if (!next) {
      require(parser.failed());
      int s = next.error().status;
      require(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505);
      out.failed = true;
      out.status = s;
      return;
    }
    if (!next->has_value()) return;
    check(**next, limits);
    out.requests.push_back(std::move(**next));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t chunk_count = (data[0] & 0x0F) + 1u;
  HttpParserLimits limits;
  if (data[1] != 0) {
    limits.max_header_bytes = 32u + 8u * data[1];
    limits.max_headers = 1u + data[1] % 8;
    limits.max_target_bytes = 4u + data[1];
    limits.max_body_bytes = data[1];
  }
  if (size < 2 + chunk_count) return 0;
  const uint8_t* chunks = data + 2;
  std::string_view stream(reinterpret_cast<const char*>(data + 2 + chunk_count), size - 2 - chunk_count);

  Outcome pieces;
  HttpRequestParser parser(limits);
  size_t at = 0;
  for (size_t turn = 0; at < stream.size() && !pieces.failed && !parser.upgraded(); ++turn) {
    size_t n = std::min<size_t>(chunks[turn % chunk_count], stream.size() - at);
    parser.append(stream.substr(at, n));
    at += n;
    drain(parser, pieces, limits);
    if (turn > stream.size() + chunk_count) break;  // all-zero chunk sizes
  }
  if (!pieces.failed) {
    parser.append(stream.substr(at));
    drain(parser, pieces, limits);
  }

  Outcome whole;
  HttpRequestParser one(limits);
  one.append(stream);
  drain(one, whole, limits);

  // Both fail or neither; the status may differ, since http-parser delivers a
  // header's bytes to the callbacks (where our limits are checked) at the end
  // of each piece but reports its own errors where it finds them.
  require(pieces.failed == whole.failed);
  require(pieces.requests.size() == whole.requests.size());
  for (size_t i = 0; i < pieces.requests.size(); ++i) require(same(pieces.requests[i], whole.requests[i]));
  return 0;
}
