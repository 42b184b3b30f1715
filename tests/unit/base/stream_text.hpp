// Helpers of the base unit tests that read what a stream was given.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace tsunagu::test {

// Everything written to `file` so far, from its start; the position ends at its end.
inline std::string stream_text(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) out.append(buffer, n);
  return out;
}

// How many times `what` occurs in `text` (overlapping ones too).
inline size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Runs `body` with stderr sent to a temporary file; returns what was written.
template <class Body>
std::string capture_stderr(Body body) {
  std::fflush(stderr);
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  int saved = dup(STDERR_FILENO);
  dup2(fileno(file), STDERR_FILENO);
  body();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out = stream_text(file);
  std::fclose(file);
  return out;
}

}  // namespace tsunagu::test
