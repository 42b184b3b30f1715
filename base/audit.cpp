#include "base/audit.hpp"

#include <algorithm>

namespace tsunagu::audit {
namespace {

bool bare(std::string_view value) {
  if (value.empty()) return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '\\' && c != '=';
  });
}

void append_hex(std::string& out, unsigned char byte) {
  constexpr char digits[] = "0123456789abcdef";
  out += "\\x";
  out += digits[byte >> 4];
  out += digits[byte & 0x0f];
}

}  // namespace

std::string_view AuditEvent::field(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return v;
  return {};
}

bool AuditEvent::has(std::string_view key) const {
  return std::any_of(fields.begin(), fields.end(), [&](const auto& f) { return f.first == key; });
}

std::string quote_audit_value(std::string_view value) {
  if (bare(value)) return std::string(value);
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (size_t i = 0; i < value.size(); ++i) {
    auto u = static_cast<unsigned char>(value[i]);
    char c = value[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      append_hex(out, u);
    } else if (u == 0xc2 && i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(value[i + 1]) <= 0x9f) {
      // A C1 control (U+0080..U+009F, NEL among them): some readers break lines there.
      append_hex(out, u);
      append_hex(out, static_cast<unsigned char>(value[++i]));
    } else if (u == 0xe2 && i + 2 < value.size() && static_cast<unsigned char>(value[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(value[i + 2]) == 0xa8 || static_cast<unsigned char>(value[i + 2]) == 0xa9)) {
      // U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR.
      for (int k = 0; k < 3; ++k) append_hex(out, static_cast<unsigned char>(value[i + static_cast<size_t>(k)]));
      i += 2;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string format_audit_line(const AuditEvent& event) {
  std::string line = "event=" + quote_audit_value(event.event);
  for (const auto& [key, value] : event.fields) {
    line += ' ';
    line += key;
    line += '=';
    line += quote_audit_value(value);
  }
  return line;
}

}  // namespace tsunagu::audit
