// `card issue`'s batch (rendezvous/card_batch.*): a real LMDB ledger and
// real files; a failed commit (the storage layer's fault plan) leaves no card
// file behind.
#include "rendezvous/card_batch.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../storage/temp_dir.hpp"
#include "cards/card_codec.hpp"
#include "cards/card_password.hpp"
#include "tests/unit/cards/card_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using test::TempDir;

namespace {

struct BatchFixture {
  TempDir dir;
  std::unique_ptr<storage::Environment> env;
  CardLedger ledger;
  CardIssuer issuer;

  BatchFixture() {
    std::filesystem::create_directory(dir.file("db"));
    auto opened = storage::Environment::open(dir.file("db"), storage::Environment::Options{uint64_t{16} << 20, 8, 16});
    REQUIRE(opened.has_value());
    env = std::move(*opened);
    auto made = CardLedger::open(*env);
    REQUIRE(made.has_value());
    ledger = *made;
    auto loaded = load_card_issuer(dir.path, true);
    REQUIRE(loaded.has_value());
    issuer = *loaded;
  }

  CardBatch batch(uint64_t count) const {
    CardBatch b;
    b.units = 50;
    cards::Area area;
    area.code = "home";
    area.internet = {cards::test::point("home-net", 1)};
    b.areas = {area};
    b.group = 7;
    b.count = count;
    b.out = dir.file("out");
    b.now = 1'796'000'000;
    b.password_hashing = security::ScryptParameters{10, 8, 1};
    return b;
  }

  std::optional<CardAccount> account(uint64_t serial) {
    auto txn = env->begin_read();
    REQUIRE(txn.has_value());
    auto found = ledger.find(*txn, serial);
    REQUIRE(found.has_value());
    return *found;
  }

  size_t card_files() const {
    size_t n = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir.file("out"), ec))
      if (entry.path().extension() == ".card" || entry.path().extension() == ".png") ++n;
    return n;
  }
};

}  // namespace

TEST_CASE("card batch: every card is in the ledger and on disk, verifies, and the list holds its password") {
  BatchFixture f;
  std::FILE* sink = std::tmpfile();
  ProgressReport progress(ProgressStyle::lines, sink);
  auto issued = issue_card_batch(*f.env, f.ledger, f.issuer, f.batch(3), progress);
  REQUIRE(issued.has_value());
  REQUIRE(issued->cards.size() == 3);
  CHECK(f.card_files() == 6);  // .card and .png each
  for (const auto& card : issued->cards) {
    auto entry = f.account(card.serial);
    REQUIRE(entry.has_value());
    CHECK(entry->card_id == card.card_id);
    CHECK(cards::check_card_password(card.password, entry->password_hash));
    std::ifstream in(card.file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto decoded = cards::decode_card(to_bytes(bytes), f.issuer.trusted, 1'796'000'000);
    REQUIRE(decoded.has_value());
    CHECK(decoded->serial == card.serial);
  }
  std::ifstream list(issued->list_file);
  std::stringstream text;
  text << list.rdbuf();
  CHECK(text.str().find(issued->cards[2].password) != std::string::npos);
  // Progress: both phases reach 100 %.
  std::rewind(sink);
  char line[128];
  std::string shown;
  while (std::fgets(line, sizeof line, sink) != nullptr) shown += line;
  std::fclose(sink);
  CHECK(shown.find("issuing: 100% (3 of 3)") != std::string::npos);
  CHECK(shown.find("writing: 100% (3 of 3)") != std::string::npos);
}

TEST_CASE("card batch: a failed ledger commit writes no card file (issue 15: files came before the commit)") {
  BatchFixture f;
  ProgressReport quiet(ProgressStyle::off);
  f.env->faults().fail_commit(1, EIO);
  auto issued = issue_card_batch(*f.env, f.ledger, f.issuer, f.batch(3), quiet);
  REQUIRE_FALSE(issued.has_value());
  CHECK(issued.error().find("no card file was written") != std::string::npos);
  CHECK(f.card_files() == 0);
  CHECK_FALSE(std::filesystem::exists(f.dir.file("out/cards.tsv")));
  CHECK_FALSE(f.account(1).has_value());
  // The next batch, with storage back, issues as usual.
  auto again = issue_card_batch(*f.env, f.ledger, f.issuer, f.batch(1), quiet);
  REQUIRE(again.has_value());
  CHECK(f.card_files() == 2);
}
