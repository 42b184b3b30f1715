#include "base/files.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace tsunagu {
namespace {

std::string error_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::string octal(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

// O_EXCL refuses a name that exists (a stale one of ours, or one planted by
// someone else) and O_NOFOLLOW a symlink; another random name is tried instead.
int create_temporary(const std::string& path, std::string& temporary) {
  static constexpr char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int attempt = 0; attempt < 16; ++attempt) {
    unsigned char random[6];
    if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) return -1;
    temporary = path + ".tmp-";
    for (unsigned char r : random) temporary += letters[r % (sizeof letters - 1)];
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

bool write_all(int fd, const std::string& content) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// The rename lives in the directory entry: until the directory itself is
// synced, a power loss may bring back the old file (or none) even though the
// new file's data was synced.
Expected<void, std::string> sync_parent_directory(const std::string& path) {
  std::string directory = std::filesystem::path(path).parent_path().string();
  if (directory.empty()) directory = ".";
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unexpected(error_text("cannot open the directory", directory) + " to sync the rename of " + path);
  std::string error;
  // EINVAL: a file system that cannot sync a directory (some network ones);
  // the rename then is as durable as that file system makes it.
  if (::fsync(fd) != 0 && errno != EINVAL)
    error = error_text("cannot sync the directory", directory) + " after renaming " + path;
  ::close(fd);
  if (!error.empty()) return Unexpected(error);
  return {};
}

}  // namespace

Expected<TemporaryFile, std::string> create_temporary_beside(const std::string& path) {
  TemporaryFile file;
  file.fd = create_temporary(path, file.path);
  if (file.fd < 0) return Unexpected(error_text("cannot create", file.path.empty() ? path + ".tmp-*" : file.path));
  return file;
}

Expected<void, std::string> write_file_atomically(const std::string& path, const std::string& content, unsigned mode) {
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode))
    return Unexpected(path + " exists and is not a regular file (" +
                      (S_ISLNK(existing.st_mode) ? "a symbolic link" : "a directory or device") +
                      "): refusing to replace it; remove it first");
  auto created = create_temporary_beside(path);
  if (!created) return Unexpected(created.error());
  int fd = created->fd;
  const std::string& temporary = created->path;
  std::string error;
  if (::fchmod(fd, mode) != 0) error = error_text("cannot set the mode of", temporary);
  else if (!write_all(fd, content)) error = error_text("cannot write", temporary);
  else if (::fsync(fd) != 0) error = error_text("cannot sync", temporary);
  if (::close(fd) != 0 && error.empty()) error = error_text("cannot sync", temporary);
  if (error.empty() && ::rename(temporary.c_str(), path.c_str()) != 0) error = error_text("cannot rename", temporary);
  if (!error.empty()) {
    ::unlink(temporary.c_str());
    return Unexpected(error);
  }
  return sync_parent_directory(path);
}

Expected<void, std::string> make_private_directory(const std::string& path, unsigned mode) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    if (errno != ENOENT) return Unexpected(error_text("cannot inspect", path));
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Unexpected("cannot create " + parent.string() + ": " + ec.message());
    if (::mkdir(path.c_str(), mode) == 0) {
      if (::chmod(path.c_str(), mode) != 0) return Unexpected(error_text("cannot set the mode of", path));
      return {};
    }
    if (errno != EEXIST) return Unexpected(error_text("cannot create", path));
    if (::stat(path.c_str(), &status) != 0) return Unexpected(error_text("cannot inspect", path));
  }
  if (!S_ISDIR(status.st_mode)) return Unexpected(path + " exists and is not a directory");
  if (status.st_uid != ::geteuid())
    return Unexpected(path + " belongs to another user (uid " + std::to_string(status.st_uid) + ", not " +
                      std::to_string(::geteuid()) + "): refusing to write keys there; give a new directory, or one "
                      "of your own that only you can write to");
  if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return Unexpected(path + " is writable by " + ((status.st_mode & S_IWOTH) ? "others" : "its group") + " (mode " +
                      octal(status.st_mode) + "): refusing to write keys there; chmod go-w " + path +
                      " or give a new directory");
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
