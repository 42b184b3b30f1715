#include "base/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace tsunagu {

Expected<void, std::string> write_file_atomically(const std::string& path, const std::string& content, unsigned mode) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Unexpected("cannot create " + temporary + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string error = "cannot write " + temporary + ": " + std::strerror(errno);
      ::close(fd);
      return Unexpected(error);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Unexpected("cannot sync " + temporary + ": " + std::strerror(errno));
  if (::rename(temporary.c_str(), path.c_str()) != 0)
    return Unexpected("cannot rename " + temporary + ": " + std::strerror(errno));
  return {};
}

Expected<std::string, std::string> read_text_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return Unexpected("cannot read " + path + ": " + ec.message());
  if (size > max_bytes) return Unexpected(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  std::string text(size, '\0');
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return Unexpected("cannot open " + path + ": " + std::strerror(errno));
  size_t read = std::fread(text.data(), 1, size, file);
  std::fclose(file);
  text.resize(read);
  return text;
}

}  // namespace tsunagu
