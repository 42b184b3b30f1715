// A sample card and issuer shared by the cards unit tests.
#pragma once

#include "cards/card.hpp"
#include "cards/card_codec.hpp"
#include "security/ed25519.hpp"

namespace tsunagu::cards::test {

inline constexpr int64_t sample_expiry = 1'830'000'000;  // 2027-12-28
inline constexpr int64_t sample_now = 1'796'000'000;      // 2026-11-30

struct Issuer {
  security::Ed25519KeyPair key = security::generate_ed25519_key();
  TrustedIssuer trusted() const { return TrustedIssuer{issuer_key_id(key.public_key), key.public_key}; }
};

inline AccessPoint point(std::string name, uint32_t cost, std::vector<TariffBand> tariff = {},
                         std::vector<std::string> destinations = {}) {
  AccessPoint p;
  p.name = std::move(name);
  p.node = p.name + ".example.net:7400";
  p.relays = {"stun:" + p.name + ".example.net:3478", "turn:" + p.name + ".example.net:3478"};
  p.cost_per_minute = cost;
  p.tariff = std::move(tariff);
  p.destinations = std::move(destinations);
  return p;
}

inline Card sample_card(const Issuer& issuer) {
  Card card;
  card.issuer_key_id = issuer_key_id(issuer.key.public_key);
  card.serial = 42;
  card.card_id = CardId{20261205, 7, 42};
  card.expires_at = sample_expiry;
  card.units_issued = 1000;
  Area a;
  a.code = "area-a";
  a.internet = {point("a-net", 1, {TariffBand{480, 1200, 2}}), point("a-net-2", 2)};
  a.premium = {point("a-premium", 4, {}, {"+81", "bob"})};
  a.agents = {point("a-agent", 6)};
  Area b;
  b.code = "area-b";
  b.internet = {point("b-net", 3)};
  card.areas = {a, b};
  return card;
}

}  // namespace tsunagu::cards::test
