#include "cards/card_password.hpp"

#include <doctest/doctest.h>

namespace tsunagu::cards {
namespace {

// Cheap scrypt parameters: the test checks the wiring, not the cost.
const security::ScryptParameters fast{10, 8, 1};

Bytes secret(char fill) { return Bytes(32, std::byte(fill)); }

}  // namespace

TEST_CASE("card password: twelve digits in groups of four, the same for the same card and secret") {
  CardId id{20261205, 7, 42};
  std::string password = derive_card_password(secret('s'), id);
  CHECK(password.size() == 14);
  CHECK(password[4] == '-');
  CHECK(password[9] == '-');
  CHECK(normalized_card_password(password).find_first_not_of("0123456789") == std::string::npos);
  CHECK(derive_card_password(secret('s'), id) == password);
}

TEST_CASE("card password: another card or another issuer secret gives another password") {
  CardId id{20261205, 7, 42};
  std::string password = derive_card_password(secret('s'), id);
  CHECK(derive_card_password(secret('t'), id) != password);
  CHECK(derive_card_password(secret('s'), CardId{20261205, 7, 43}) != password);
  CHECK(derive_card_password(secret('s'), CardId{20261205, 8, 42}) != password);
  CHECK(derive_card_password(secret('s'), CardId{20261206, 7, 42}) != password);
}

TEST_CASE("card password: the stored hash is scrypt and matches the password typed with or without separators") {
  std::string password = derive_card_password(secret('s'), CardId{20261205, 7, 42});
  std::string stored = hash_card_password(password, fast);
  CHECK(stored.starts_with("$scrypt$"));
  CHECK(stored.find(normalized_card_password(password)) == std::string::npos);
  CHECK(check_card_password(password, stored));
  CHECK(check_card_password(normalized_card_password(password), stored));
  std::string spaced = password;
  for (char& c : spaced)
    if (c == '-') c = ' ';
  CHECK(check_card_password(spaced, stored));
  std::string wrong = normalized_card_password(password);
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CHECK_FALSE(check_card_password(wrong, stored));
}

TEST_CASE("card password: a holder's password needs 8 letters and digits, counted as they are compared") {
  CHECK(holder_password_problem("7391-2204", 64) == nullptr);
  CHECK(holder_password_problem("correct horse", 64) == nullptr);
  CHECK(holder_password_problem("1234567", 64) != nullptr);
  CHECK(holder_password_problem("12-34-56-7", 64) != nullptr);  // 7 digits: dashes do not count
  CHECK(holder_password_problem("", 64) != nullptr);
  CHECK(holder_password_problem(std::string(65, '1'), 64) != nullptr);
  CHECK(holder_password_problem(std::string(64, '1'), 64) == nullptr);
}

}  // namespace tsunagu::cards
