// Whole-file reads and durable writes for small files (keys, certificates,
// configuration, ready files), safe in a directory another local user can see.
#pragma once

#include <cstddef>
#include <string>

#include "base/expected.hpp"

namespace tsunagu {

// Writes a fresh temporary file beside PATH (a unique name, O_CREAT|O_EXCL|
// O_NOFOLLOW, so a file or symlink placed there is never opened), gives it
// exactly `mode`, fsyncs it, renames it over PATH and fsyncs the directory (so
// the rename survives a power loss): readers see the old content or the new,
// never a torn file. Refused when PATH exists and is not a regular file (a
// symlink is neither followed nor replaced). On failure the temporary file is
// removed; a crash leaves at most a stale PATH.tmp-XXXXXX, harmless later.
Expected<void, std::string> write_file_atomically(const std::string& path, const std::string& content, unsigned mode);

// A new file beside PATH named PATH.tmp-XXXXXX, opened for writing with
// O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 (what write_file_atomically uses).
// The caller closes the descriptor and renames or removes the file.
struct TemporaryFile {
  int fd = -1;
  std::string path;
};
Expected<TemporaryFile, std::string> create_temporary_beside(const std::string& path);

// A directory to write keys into. Absent: created (with its parents) and given
// exactly `mode` (0700 or 0750). Present: kept only when it is a directory
// owned by the effective user and not writable by group or others; anything
// else is refused with an error that says why.
Expected<void, std::string> make_private_directory(const std::string& path, unsigned mode = 0700);

// The whole file, refused when larger than `max_bytes`.
Expected<std::string, std::string> read_text_file(const std::string& path, size_t max_bytes = 1 << 20);

}  // namespace tsunagu
