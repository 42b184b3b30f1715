#include "lan-agent/hook_settings.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <toml++/toml.h>

namespace tsunagu::lanagent {

HookSettings read_hook_settings(const TomlReader& reader, const std::string& base_dir) {
  HookSettings hook;
  hook.socket = resolve_config_path(base_dir, reader.text("hook.socket", hook.socket, 100));
  if (hook.socket.size() >= 100) reader.fail("hook.socket", "path longer than a Unix socket allows (107 bytes)");
  hook.spool_directory = resolve_config_path(base_dir, reader.text("hook.spool_directory", hook.spool_directory));
  hook.allowed_users = reader.strings("hook.allowed_users", {}, 64);
  hook.allowed_groups = reader.strings("hook.allowed_groups", hook.allowed_groups, 64);
  hook.timeout_ms = reader.integer("hook.timeout_ms", 1000, 50, 60'000);
  hook.chain = reader.text("hook.chain", "");
  if (!hook.chain.empty() && hook.chain[0] != '/')
    reader.fail("hook.chain", "must be an absolute path (Kea gives its scripts no PATH)");
  return hook;
}

std::string config_base_directory(const std::string& file) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  std::string base_dir = (ec ? std::filesystem::path(file) : absolute).parent_path().string();
  return base_dir.empty() ? "." : base_dir;
}

HookSettings load_hook_settings(const std::string& file) {
  // read(2) rather than an ifstream: this runs once per DHCP event.
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigFileError(file + ": cannot read (" + std::string(std::strerror(errno)) + ")");
  // Grown as it is read, not a zeroed 1 MiB buffer up front (the page faults
  // of that showed in the hook's profile).
  std::string text;
  char chunk[16384];
  while (text.size() <= kMaxConfigBytes) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  if (text.size() > kMaxConfigBytes) throw ConfigFileError(file + ": larger than 1 MiB");
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    throw ConfigFileError(file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
                          std::string(error.description()));
  }
  return read_hook_settings(TomlReader(root, file), config_base_directory(file));
}

}  // namespace tsunagu::lanagent
