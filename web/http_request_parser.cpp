#include "web/http_request_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace tsunagu::web {

namespace {

bool is_token_char(char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  return std::strchr("()<>@,;:\\\"/[]?={}", c) == nullptr;
}

}  // namespace

struct HttpRequestParser::State {
  http_parser parser{};
  http_parser_settings settings{};
  HttpParserLimits limits;
  HttpRequest request;
  std::string field;
  std::string value;
  bool in_value = false;
  bool started = false;    // a request's first byte has been parsed
  bool complete = false;   // on_message_complete ran for `request`
  bool expects_continue = false;
  size_t header_bytes = 0;
  size_t header_count = 0;
  std::optional<HttpParseError> refusal;  // why a callback stopped the parser

  int refuse(int status, std::string detail) {
    refusal = HttpParseError{status, std::move(detail)};
    // Non-zero fails the parse with HPE_CB_*; on_headers_complete reads 1 and
    // 2 as "no body", so -1 it is.
    return -1;
  }

  int finish_header() {
    if (!in_value) return 0;
    // http-parser's lenient build lets a space into a name ("Bad Header");
    // RFC 9112 forbids it, and proxies disagree on what it means.
    if (field.empty() || !std::all_of(field.begin(), field.end(), is_token_char))
      return refuse(400, "invalid header name");
    size_t end = value.find_last_not_of(" \t");
    value.erase(end == std::string::npos ? 0 : end + 1);
    size_t begin = value.find_first_not_of(" \t");
    value.erase(0, begin == std::string::npos ? value.size() : begin);
    request.headers.add(std::move(field), std::move(value));
    field.clear();
    value.clear();
    in_value = false;
    return 0;
  }

  int count_header_bytes(size_t length) {
    header_bytes += length;
    if (header_bytes > limits.max_header_bytes) return refuse(431, "request headers too large");
    return 0;
  }
};

struct HttpRequestParser::Callbacks {
  static State& of(http_parser* parser) { return *static_cast<State*>(parser->data); }

  static int on_message_begin(http_parser* parser) {
    State& s = of(parser);
    s.request = HttpRequest{};
    s.field.clear();
    s.value.clear();
    s.in_value = false;
    s.started = true;
    s.complete = false;
    s.expects_continue = false;
    s.header_bytes = 0;
    s.header_count = 0;
    return 0;
  }

  static int on_url(http_parser* parser, const char* at, size_t length) {
    State& s = of(parser);
    if (s.request.target.size() + length > s.limits.max_target_bytes) return s.refuse(414, "request target too long");
    s.request.target.append(at, length);
    return s.count_header_bytes(length);
  }

  static int on_header_field(http_parser* parser, const char* at, size_t length) {
    State& s = of(parser);
    if (s.in_value && s.finish_header() != 0) return -1;
    if (s.field.empty()) {
      if (++s.header_count > s.limits.max_headers) return s.refuse(431, "too many request headers");
      if (s.count_header_bytes(4) != 0) return -1;  // ": " and CRLF
    }
    s.field.append(at, length);
    return s.count_header_bytes(length);
  }

  static int on_header_value(http_parser* parser, const char* at, size_t length) {
    State& s = of(parser);
    s.in_value = true;
    s.value.append(at, length);
    return s.count_header_bytes(length);
  }

  static int on_headers_complete(http_parser* parser) {
    State& s = of(parser);
    if (s.finish_header() != 0 || s.refusal) return -1;
    if (parser->http_major != 1 || parser->http_minor > 1) return s.refuse(505, "only HTTP/1.0 and HTTP/1.1 are served");
    switch (parser->method) {
      case HTTP_GET: case HTTP_HEAD: case HTTP_POST: case HTTP_PUT: case HTTP_DELETE: case HTTP_OPTIONS:
      case HTTP_PATCH:
        break;
      default:
        return s.refuse(501, std::string("method not supported: ") + http_method_str(static_cast<http_method>(parser->method)));
    }
    s.request.method = http_method_str(static_cast<http_method>(parser->method));
    if ((parser->flags & F_CONTENTLENGTH) && parser->content_length != ULLONG_MAX &&
        parser->content_length > s.limits.max_body_bytes)
      return s.refuse(413, "request body too large");
    if (auto decoded = split_target(s.request); !decoded) return s.refuse(400, decoded.error());
    s.request.keep_alive = http_should_keep_alive(parser) != 0;
    s.request.upgrade = parser->upgrade != 0;
    if (const std::string* expect = s.request.headers.find("expect")) {
      bool body_follows = (parser->flags & F_CHUNKED) || (parser->content_length > 0 && parser->content_length != ULLONG_MAX);
      if (!equals_ignoring_case(*expect, "100-continue")) return s.refuse(417, "only Expect: 100-continue is understood");
      s.expects_continue = body_follows && parser->http_minor == 1;
    }
    return 0;
  }

  static int on_body(http_parser* parser, const char* at, size_t length) {
    State& s = of(parser);
    if (s.request.body.size() + length > s.limits.max_body_bytes) return s.refuse(413, "request body too large");
    s.request.body.append(at, length);
    return 0;
  }

  static int on_message_complete(http_parser* parser) {
    State& s = of(parser);
    s.complete = true;
    s.request.keep_alive = http_should_keep_alive(parser) != 0;
    // Stop here: the next request is parsed only when this one has been taken.
    http_parser_pause(parser, 1);
    return 0;
  }

  static Expected<void, std::string> split_target(HttpRequest& request) {
    const std::string& target = request.target;
    if (target.empty()) return Unexpected(std::string("empty request target"));
    http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0)
      return Unexpected(std::string("malformed request target"));
    std::string_view raw_path = "/";
    if (url.field_set & (1 << UF_PATH)) raw_path = std::string_view(target).substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
    if (raw_path.empty() || raw_path[0] != '/') return Unexpected(std::string("request path must start with '/'"));
    auto path = percent_decode(raw_path, false);
    if (!path) return Unexpected(std::string("invalid percent-encoding in path"));
    request.path = std::move(*path);
    if (url.field_set & (1 << UF_QUERY)) {
      std::string_view query = std::string_view(target).substr(url.field_data[UF_QUERY].off, url.field_data[UF_QUERY].len);
      while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        size_t eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), true);
        auto val = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
        if (!key || !val) return Unexpected(std::string("invalid percent-encoding in query"));
        request.query.emplace_back(std::move(*key), std::move(*val));
      }
    }
    return {};
  }
};

namespace {

int status_for(http_errno error) {
  switch (error) {
    case HPE_HEADER_OVERFLOW: return 431;
    case HPE_INVALID_VERSION: return 505;
    case HPE_INVALID_TRANSFER_ENCODING: return 501;
    default: return 400;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = hex_value(text[i + 1]);
      int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      char decoded = static_cast<char>(high * 16 + low);
      if (decoded == '\0') return std::nullopt;
      out += decoded;
      i += 2;
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += (plus_is_space && c == '+') ? ' ' : c;
    }
  }
  return out;
}

bool path_is_safe(std::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) return false;
  size_t at = 1;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    std::string_view segment = path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
    if (segment == "." || segment == "..") return false;
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  return true;
}

HttpRequestParser::HttpRequestParser(HttpParserLimits limits) : state_(std::make_unique<State>()) {
  state_->limits = limits;
  http_parser_init(&state_->parser, HTTP_REQUEST);
  state_->parser.data = state_.get();
  http_parser_settings_init(&state_->settings);
  state_->settings.on_message_begin = Callbacks::on_message_begin;
  state_->settings.on_url = Callbacks::on_url;
  state_->settings.on_header_field = Callbacks::on_header_field;
  state_->settings.on_header_value = Callbacks::on_header_value;
  state_->settings.on_headers_complete = Callbacks::on_headers_complete;
  state_->settings.on_body = Callbacks::on_body;
  state_->settings.on_message_complete = Callbacks::on_message_complete;
}

HttpRequestParser::~HttpRequestParser() = default;

void HttpRequestParser::append(std::string_view bytes) { buffer_.append(bytes); }

std::string HttpRequestParser::take_buffered() { return std::exchange(buffer_, {}); }

bool HttpRequestParser::in_request() const { return state_->started && !state_->complete; }

bool HttpRequestParser::take_expect_continue() {
  if (state_->complete) return false;
  return std::exchange(state_->expects_continue, false);
}

Expected<std::optional<HttpRequest>, HttpParseError> HttpRequestParser::next() {
  if (error_) return Unexpected(*error_);
  if (upgraded_) return std::optional<HttpRequest>{};
  State& s = *state_;
  if (s.complete) {
    // The previous request was taken; resume after it.
    s.complete = false;
    s.started = false;
    http_parser_pause(&s.parser, 0);
  }
  if (buffer_.empty()) return std::optional<HttpRequest>{};
  size_t parsed = http_parser_execute(&s.parser, &s.settings, buffer_.data(), buffer_.size());
  auto error = static_cast<http_errno>(s.parser.http_errno);
  if (error != HPE_OK && error != HPE_PAUSED) {
    if (s.refusal) error_ = std::move(s.refusal);
    else error_ = HttpParseError{status_for(error), http_errno_description(error)};
    buffer_.clear();
    return Unexpected(*error_);
  }
  buffer_.erase(0, parsed);
  if (!s.complete) return std::optional<HttpRequest>{};
  if (s.request.upgrade) upgraded_ = true;
  return std::optional<HttpRequest>(std::move(s.request));
}

Expected<std::vector<HttpRequest>, HttpParseError> HttpRequestParser::feed(std::string_view bytes) {
  append(bytes);
  std::vector<HttpRequest> requests;
  for (;;) {
    auto next_request = next();
    if (!next_request) return Unexpected(next_request.error());
    if (!next_request->has_value()) return requests;
    requests.push_back(std::move(**next_request));
  }
}

}  // namespace tsunagu::web
