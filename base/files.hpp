// Whole-file reads and durable writes for small files (keys, certificates,
// configuration, ready files).
#pragma once

#include <cstddef>
#include <string>

#include "base/expected.hpp"

namespace tsunagu {

// Writes PATH.tmp with `mode`, fsyncs it and renames it over PATH: readers see
// the old content or the new, never a torn file.
Expected<void, std::string> write_file_atomically(const std::string& path, const std::string& content, unsigned mode);
// The whole file, refused when larger than `max_bytes`.
Expected<std::string, std::string> read_text_file(const std::string& path, size_t max_bytes = 1 << 20);

}  // namespace tsunagu
