// Helpers shared by the proto unit tests.
#pragma once

#include <cstdlib>
#include <string_view>

#include "base/bytes.hpp"

namespace tsunagu::proto::test {

// "00 01 ab" -> bytes; whitespace is ignored, anything else but hex digits aborts.
inline Bytes hex(std::string_view text) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    std::abort();
  };
  Bytes out;
  int high = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') continue;
    int d = digit(c);
    if (high < 0) {
      high = d;
    } else {
      out.push_back(std::byte((high << 4) | d));
      high = -1;
    }
  }
  if (high >= 0) std::abort();
  return out;
}

}  // namespace tsunagu::proto::test
