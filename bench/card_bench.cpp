// Access cards: how many cards one CPU-second verifies (Ed25519 verify + CBOR
// decode, and each alone), and how many ledger debits per second LMDB takes
// with group commit (one fsync per transaction of G debits). Compare the
// verify figure with `openssl speed ed25519` run beside it (docs/cards.md).
//
//   card_bench [--seconds S] [--dir DIR] [--cards N] [--debits D]
// DIR (default: a new directory under /tmp, removed after) holds the LMDB
// environment; put it on the disk the node uses for a meaningful fsync cost.
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cards/card_codec.hpp"
#include "rendezvous/card_ledger.hpp"
#include "security/ed25519.hpp"

using namespace tsunagu;

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// A card like one an issuer hands out: two areas, five access points.
cards::Card sample_card(const Bytes& public_key) {
  auto point = [](std::string name, uint32_t cost) {
    cards::AccessPoint p;
    p.node = name + ".example.net:7400";
    p.relays = {"stun:" + name + ".example.net:3478", "turn:" + name + ".example.net:3478"};
    p.name = std::move(name);
    p.cost_per_minute = cost;
    return p;
  };
  cards::Card card;
  card.issuer_key_id = cards::issuer_key_id(public_key);
  card.serial = 1;
  card.card_id = cards::CardId{20261205, 7, 1};
  card.expires_at = 4'000'000'000;
  card.units_issued = 1000;
  cards::Area a;
  a.code = "kansai";
  a.internet = {point("kansai-net", 1), point("kansai-net-backup", 3)};
  a.internet[0].tariff = {cards::TariffBand{480, 1200, 2}};
  a.premium = {point("kansai-premium", 5)};
  a.premium[0].destinations = {"+81"};
  a.agents = {point("kansai-agent", 8)};
  cards::Area b;
  b.code = "kanto";
  b.internet = {point("kanto-net", 3)};
  card.areas = {a, b};
  return card;
}

template <class Work>
double rate(const char* what, double seconds, Work work) {
  uint64_t done = 0;
  double start = cpu_seconds();
  double used = 0;
  while (used < seconds) {
    for (int i = 0; i < 100; ++i) work();
    done += 100;
    used = cpu_seconds() - start;
  }
  double per_second = static_cast<double>(done) / used;
  std::printf("%-44s %10.0f per CPU-second\n", what, per_second);
  return per_second;
}

// OpenSSL's own Ed25519 verify rate, measured now by `openssl speed` (the
// real peer in the same run, so the ratio holds on a busy machine); 0 when it
// cannot be run. Its figure is per wall-clock second of one process.
double openssl_verify_rate(double seconds) {
  std::string command = "openssl speed -seconds " + std::to_string(std::max(1, static_cast<int>(seconds))) +
                        " ed25519 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return 0;
  char line[512];
  double sign = 0, verify = 0;
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    const char* at = std::strstr(line, "(Ed25519)");
    if (at == nullptr) continue;
    double sign_time = 0, verify_time = 0;
    if (std::sscanf(at + 9, " %lfs %lfs %lf %lf", &sign_time, &verify_time, &sign, &verify) != 4) verify = 0;
  }
  pclose(pipe);
  return verify;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  std::string dir;
  uint64_t card_count = 1000, debit_count = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    else if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    else if (std::strcmp(argv[i], "--cards") == 0) card_count = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--debits") == 0) debit_count = std::strtoull(argv[i + 1], nullptr, 10);
    else return std::fprintf(stderr, "usage: card_bench [--seconds S] [--dir DIR] [--cards N] [--debits D]\n"), 2;
  }

  auto key = security::generate_ed25519_key();
  cards::Card card = sample_card(key.public_key);
  Bytes signed_card = *cards::sign_card(card, key.private_key);
  Bytes payload = *cards::encode_card_payload(card);
  std::vector<cards::TrustedIssuer> trusted = {{cards::issuer_key_id(key.public_key), key.public_key}};
  Bytes message = to_bytes("a message of about the card's size");
  message.resize(payload.size());
  Bytes signature = security::ed25519_sign(key.private_key, message);
  std::printf("card: %zu bytes (payload %zu)\n", signed_card.size(), payload.size());

  double cards_per_second = rate("card verification (decode_card)", seconds, [&] {
    if (!cards::decode_card(signed_card, trusted, 1'800'000'000)) std::abort();
  });
  rate("Ed25519 verify alone (same size message)", seconds, [&] {
    if (!security::ed25519_verify(key.public_key, message, signature)) std::abort();
  });
  rate("CBOR decode alone (parse_card_payload)", seconds, [&] {
    if (!cards::parse_card_payload(payload)) std::abort();
  });
  if (double openssl = openssl_verify_rate(seconds); openssl > 0)
    std::printf("%-44s %10.0f verify/s; decode_card is %.2f of it\n", "openssl speed ed25519 (same run)", openssl,
                cards_per_second / openssl);
  else
    std::printf("openssl speed ed25519: not run (no openssl command, or its output was not understood)\n");

  bool own_dir = dir.empty();
  if (own_dir) {
    char pattern[] = "/tmp/tsunagu-card-bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return std::perror("mkdtemp"), 1;
    dir = pattern;
  }
  {
    auto env = storage::Environment::open(dir, storage::Environment::Options{uint64_t{1} << 30, 8, 16});
    if (!env) return std::fprintf(stderr, "LMDB: %s\n", env.error().detail.c_str()), 1;
    auto ledger = rendezvous::CardLedger::open(**env);
    if (!ledger) return std::fprintf(stderr, "LMDB: %s\n", ledger.error().detail.c_str()), 1;
    {
      auto txn = (*env)->begin_write();
      uint64_t first = *ledger->allocate_serials(*txn, card_count);
      for (uint64_t i = 0; i < card_count; ++i) {
        rendezvous::CardAccount account;
        account.serial = first + i;
        account.card_id = "20261205-0007-" + std::to_string(first + i);
        account.units_issued = uint64_t{1} << 40;
        if (!ledger->add(*txn, account)) return 1;
      }
      if (!txn->commit()) return std::fprintf(stderr, "commit failed\n"), 1;
    }
    for (uint64_t group : {1, 10, 100, 1000}) {
      uint64_t debits = group == 1 ? std::min<uint64_t>(debit_count / 10, 2000) : debit_count;
      auto start = std::chrono::steady_clock::now();
      uint64_t done = 0;
      while (done < debits) {
        auto txn = (*env)->begin_write();
        for (uint64_t i = 0; i < group && done < debits; ++i, ++done) {
          auto result = ledger->debit(*txn, 1 + done % card_count, 3, 1'800'000'000, "call via kansai-net");
          if (!result || result->outcome != rendezvous::LedgerOutcome::done) return 1;
        }
        if (!txn->commit()) return std::fprintf(stderr, "commit failed\n"), 1;
      }
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("ledger debits, %4llu per commit %19.0f per second (%llu debits)\n",
                  static_cast<unsigned long long>(group), static_cast<double>(debits) / elapsed,
                  static_cast<unsigned long long>(debits));
    }
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
