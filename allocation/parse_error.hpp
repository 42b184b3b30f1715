// The error every allocation/ parser and codec returns: a code to branch on, a
// short human-readable detail, and the 1-based line of the input when it has lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tsunagu::alloc {

enum class ParseErrc : uint8_t {
  too_large,      // the input or one of its fields is over its size limit
  need_more,      // a codec input ends in the middle of a record
  bad_syntax,     // not the shape the server writes
  missing_field,  // a required argument, variable, column or statement is absent
  bad_mac,
  bad_client_id,
  bad_address,
  bad_number,
  bad_time,
  bad_hostname,
  bad_version,    // a codec record of a version this build does not know
  bad_checksum,   // a codec record whose CRC does not match
  bad_pattern,    // a hostname rule pattern that cannot be used
};

std::string_view to_string(ParseErrc code);

struct ParseError {
  ParseErrc code = ParseErrc::bad_syntax;
  std::string detail;
  size_t line = 0;  // 0 when the input has no lines
};

}  // namespace tsunagu::alloc
