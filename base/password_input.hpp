// Where a command gets a password: never from its own arguments, so it does
// not show in `ps` or shell history.
#pragma once

#include <optional>
#include <string>

namespace tsunagu {

struct PasswordSource {
  std::optional<std::string> file;  // --password-file PATH (first line; "-" = stdin)
  std::string environment_variable = "TSUNAGU_PASSWORD";
  std::string prompt = "Password: ";
};

// Tries the file, then the environment variable, then an echo-less prompt on
// the terminal. nullopt with `error` set when none is available.
std::optional<std::string> read_password(const PasswordSource& source, std::string& error);

}  // namespace tsunagu
