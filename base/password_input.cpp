#include "base/password_input.hpp"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace tsunagu {
namespace {
constexpr size_t max_password_bytes = 4096;

void strip_newline(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
}
}  // namespace

std::optional<std::string> read_password(const PasswordSource& source, std::string& error) {
  std::string password;
  if (source.file) {
    if (*source.file == "-") {
      std::getline(std::cin, password);
    } else {
      std::ifstream in(*source.file);
      if (!in) {
        error = "cannot read password file " + *source.file;
        return std::nullopt;
      }
      std::getline(in, password);
    }
    strip_newline(password);
  } else if (const char* value = std::getenv(source.environment_variable.c_str()); value != nullptr) {
    password = value;
  } else if (isatty(STDIN_FILENO)) {
    termios saved{};
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::cerr << source.prompt << std::flush;
    std::getline(std::cin, password);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
    strip_newline(password);
  } else {
    error = "no password: use --password-file, set " + source.environment_variable + ", or run on a terminal";
    return std::nullopt;
  }
  if (password.size() > max_password_bytes) {
    error = "password longer than 4096 bytes";
    return std::nullopt;
  }
  return password;
}

}  // namespace tsunagu
