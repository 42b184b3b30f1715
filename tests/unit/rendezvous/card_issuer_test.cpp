#include "rendezvous/card_issuer.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../storage/temp_dir.hpp"
#include "base/files.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

using test::TempDir;

namespace {

cards::Card one_area_card(const CardIssuer& issuer) {
  cards::Card card;
  card.issuer_key_id = cards::issuer_key_id(issuer.public_key);
  card.serial = 1;
  card.card_id = cards::CardId{20261205, 1, 1};
  card.expires_at = 2'000'000'000;
  cards::Area area;
  area.code = "a";
  cards::AccessPoint point;
  point.name = "a-net";
  point.node = "node.example.net:7400";
  point.cost_per_minute = 1;
  area.internet = {point};
  card.areas = {area};
  return card;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("card issuer: absent keys are an error unless asked to create them; created ones are 0600 and stay") {
  TempDir dir;
  auto absent = load_card_issuer(dir.path, false);
  REQUIRE_FALSE(absent.has_value());
  CHECK(absent.error().find("no card has been issued") != std::string::npos);
  auto made = load_card_issuer(dir.path, true);
  REQUIRE(made.has_value());
  CHECK(made->public_key.size() == 32);
  CHECK(made->password_secret.size() == 32);
  REQUIRE(made->trusted.size() == 1);
  CHECK(made->trusted[0].public_key == made->public_key);
  CHECK(mode_of(dir.file("card_issuer.key")) == 0600);
  CHECK(mode_of(dir.file("card_password.secret")) == 0600);
  auto again = load_card_issuer(dir.path, true);
  REQUIRE(again.has_value());
  CHECK(again->private_key == made->private_key);
  CHECK(again->password_secret == made->password_secret);
}

TEST_CASE("card issuer: after rekey, new cards use the new key and old cards still verify") {
  TempDir dir;
  auto old_issuer = load_card_issuer(dir.path, true);
  REQUIRE(old_issuer.has_value());
  Bytes old_card = *cards::sign_card(one_area_card(*old_issuer), old_issuer->private_key);

  auto new_issuer = rekey_card_issuer(dir.path);
  REQUIRE(new_issuer.has_value());
  CHECK(new_issuer->public_key != old_issuer->public_key);
  CHECK(new_issuer->password_secret == old_issuer->password_secret);
  REQUIRE(new_issuer->trusted.size() == 2);
  CHECK(new_issuer->trusted[0].public_key == new_issuer->public_key);
  CHECK(new_issuer->trusted[1].public_key == old_issuer->public_key);
  CHECK(mode_of(dir.file("card_issuer_retired.pub")) == 0600);

  Bytes new_card = *cards::sign_card(one_area_card(*new_issuer), new_issuer->private_key);
  CHECK(cards::decode_card(old_card, new_issuer->trusted, 1'800'000'000).has_value());
  CHECK(cards::decode_card(new_card, new_issuer->trusted, 1'800'000'000).has_value());
  // The old key cannot sign any more: its private half is gone from the directory.
  auto reloaded = load_card_issuer(dir.path, false);
  REQUIRE(reloaded.has_value());
  CHECK(reloaded->private_key == new_issuer->private_key);

  auto third = rekey_card_issuer(dir.path);
  REQUIRE(third.has_value());
  REQUIRE(third->trusted.size() == 3);
  CHECK(third->trusted[1].public_key == new_issuer->public_key);  // newest retired first
  CHECK(third->trusted[2].public_key == old_issuer->public_key);

  // Each rekey left the retiring key's endorsement of its successor: a terminal
  // that trusts only the first key reaches the third through them.
  auto statements = read_card_key_rollovers(dir.path);
  REQUIRE(statements.size() == 2);
  CHECK(mode_of(dir.file("card_key_rollovers")) == 0644);
  std::vector<cards::TrustedIssuer> first_only{old_issuer->trusted[0]};
  auto first = cards::decode_key_rollover(statements[0], first_only);
  REQUIRE(first.has_value());
  CHECK(first->new_public_key == new_issuer->public_key);
  auto followed = cards::follow_key_rollovers(first_only, statements);
  REQUIRE(followed.size() == 2);
  CHECK(followed[1].public_key == third->public_key);
}

TEST_CASE("card issuer: at most the newest 8 key rollovers are served") {
  TempDir dir;
  REQUIRE(load_card_issuer(dir.path, true).has_value());
  for (int i = 0; i < 10; ++i) REQUIRE(rekey_card_issuer(dir.path).has_value());
  auto statements = read_card_key_rollovers(dir.path);
  REQUIRE(statements.size() == max_served_key_rollovers);
  auto current = load_card_issuer(dir.path, false);
  REQUIRE(current.has_value());
  // The last one endorses the current key, signed by the key before it.
  auto last = cards::decode_key_rollover(statements.back(), current->trusted);
  REQUIRE(last.has_value());
  CHECK(last->new_public_key == current->public_key);
}

TEST_CASE("card issuer: a damaged key file is refused with its path") {
  TempDir dir;
  REQUIRE(load_card_issuer(dir.path, true).has_value());
  REQUIRE(write_file_atomically(dir.file("card_issuer.key"), "not hex\n", 0600).has_value());
  auto damaged = load_card_issuer(dir.path, false);
  REQUIRE_FALSE(damaged.has_value());
  CHECK(damaged.error().find("card_issuer.key: not 64 hex digits") != std::string::npos);
}
