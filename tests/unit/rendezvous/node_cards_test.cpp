// Calls on an access card (rendezvous/node_cards.cpp) on a real NodeCore and
// LMDB ledger, driven as the daemon drives it, with the time injected: the
// checks at set-up, the debit per period in the turn's commit, the units
// told to the caller, the end when the card cannot pay.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/rendezvous/card_node_harness.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;
namespace sig = tsunagu::proto;

namespace {

struct Sent {
  std::shared_ptr<const Bytes> bytes;
  proto::Message m;
};

// What the node sent to `link` since the last take, decoded (the others are dropped).
std::vector<Sent> sent_to(CardNode& n, LinkId link) {
  std::vector<Sent> out;
  for (auto& action : n.node.take_terminal_actions()) {
    if (action.link != link || action.kind != NodeAction::Kind::send) continue;
    Sent s;
    s.bytes = std::make_shared<const Bytes>(std::move(action.message));
    auto decoded = proto::decode(*s.bytes);
    REQUIRE(decoded.has_value());
    s.m = std::move(decoded->message);
    out.push_back(std::move(s));
  }
  return out;
}

// Both links' messages, split.
struct Turn {
  std::vector<Sent> alice, bob;
};
Turn take(CardNode& n) {
  Turn t;
  for (auto& action : n.node.take_terminal_actions()) {
    if (action.kind != NodeAction::Kind::send) continue;
    Sent s;
    s.bytes = std::make_shared<const Bytes>(std::move(action.message));
    auto decoded = proto::decode(*s.bytes);
    REQUIRE(decoded.has_value());
    s.m = std::move(decoded->message);
    (action.link == card_alice_link ? t.alice : t.bob).push_back(std::move(s));
  }
  return t;
}

const Sent* find(const std::vector<Sent>& sent, uint16_t method, proto::MessageClass cls) {
  for (const auto& s : sent)
    if (s.m.method == method && s.m.message_class == cls) return &s;
  return nullptr;
}

std::optional<uint64_t> units_told(const std::vector<Sent>& sent) {
  const Sent* s = find(sent, sig::method::card_units, proto::MessageClass::indication);
  if (s == nullptr || s->m.find(sig::attr::card_units) == nullptr) return std::nullopt;
  return proto::read_u64(*s->m.find(sig::attr::card_units));
}

uint16_t error_code(const Sent& s) {
  const auto* a = s.m.find(proto::attr::error_code);
  auto e = a ? proto::read_error_code(*a) : std::nullopt;
  return e ? e->code : 0;
}

proto::TransactionId tid(uint8_t n) {
  proto::TransactionId id;
  id.bytes[0] = std::byte{n};
  return id;
}

// alice calls bob on the card through `route`; returns what alice got.
std::vector<Sent> place(CardNode& n, const std::string& route = "a-net-2", std::string password = {},
                        std::optional<Bytes> card = std::nullopt) {
  n.node.core().message(card_alice_link,
                        n.call_request(tid(1), card ? *card : n.card_bytes,
                                       password.empty() ? sample_card_password : password, route),
                        n.node.now());
  n.node.pump();
  Turn t = take(n);
  // bob is rung: he accepts with an answer.
  if (const Sent* ring = find(t.bob, sig::method::ring, proto::MessageClass::request)) {
    auto ok = proto::MessageBuilder::response_to(ring->m, proto::MessageClass::success);
    ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
    ok.add_string(sig::attr::ice_description, "bob-answer ufrag pwd");
    n.node.core().message(card_bob_link, ok.finish(), n.node.now());
    n.node.pump();
    n.node.tick();  // the first period's debit is due at once
    for (auto& s : sent_to(n, card_alice_link)) t.alice.push_back(std::move(s));
  }
  return t.alice;
}

void advance(CardNode& n, uint64_t seconds) {
  n.node.advance_ms(seconds * 1000);
  n.node.tick();
}

}  // namespace

TEST_CASE("card call: admitted, told its units, debited at the accept and at each period's start at the route's price") {
  CardNode n(1000, 60);
  auto alice = place(n);
  REQUIRE(find(alice, sig::method::call, proto::MessageClass::success) != nullptr);
  CHECK(units_told(alice) == 1000);  // at the placing, before the accept
  CHECK(n.units_left() == 998);      // the first period (a-net-2: 2 a minute) at the accept
  CHECK(n.node.core().counters().card_calls_admitted == 1);
  advance(n, 59);
  CHECK(n.units_left() == 998);
  advance(n, 1);
  CHECK(n.units_left() == 996);
  CHECK(units_told(sent_to(n, card_alice_link)) == 996);
  advance(n, 60);
  CHECK(n.units_left() == 994);
  // alice's link goes: the call ends, and nothing more is debited.
  n.node.terminal_gone(card_alice_link);
  advance(n, 120);
  CHECK(n.units_left() == 994);
}

TEST_CASE("card call: a forged card, a wrong password and an unknown route are refused with their reasons") {
  CardNode n;
  Bytes forged = n.card_bytes;
  forged.back() ^= std::byte{1};
  auto alice = place(n, "a-net-2", {}, forged);
  const Sent* refusal = find(alice, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(error_code(*refusal) == sig::error::card_refused);
  CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) == static_cast<uint32_t>(CardRefusal::invalid));

  alice = place(n, "a-net-2", "0000-0000-0000");
  refusal = find(alice, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) ==
        static_cast<uint32_t>(CardRefusal::bad_password));

  alice = place(n, "no-such-point");
  refusal = find(alice, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(error_code(*refusal) == sig::error::bad_request);
  CHECK(n.node.core().counters().card_calls_refused == 2);
  CHECK(n.units_left() == 1000);
}

TEST_CASE("card call: the same card in a second call at once is refused as in use") {
  CardNode n;
  place(n);
  auto second = place(n);
  const Sent* refusal = find(second, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) == static_cast<uint32_t>(CardRefusal::in_use));
}

TEST_CASE("card call: a card that cannot pay the next period is warned, then the node ends the call with 402") {
  CardNode n(3, 60);
  auto alice = place(n);
  CHECK(n.units_left() == 1);
  const Sent* told = find(alice, sig::method::card_units, proto::MessageClass::indication);
  bool warned = false;
  for (const auto& s : alice)
    if (s.m.method == sig::method::card_units && s.m.find(sig::attr::card_warning) != nullptr) warned = true;
  CHECK(told != nullptr);
  CHECK(warned);
  n.node.advance_ms(60'000);
  n.node.core().tick(n.node.now());
  n.node.pump();
  Turn t = take(n);
  CHECK(n.units_left() == 0);
  for (const auto* side : {&t.alice, &t.bob}) {
    const Sent* ended = find(*side, sig::method::call_event, proto::MessageClass::indication);
    REQUIRE(ended != nullptr);
    CHECK(proto::read_u32(*ended->m.find(sig::attr::call_state)) == sig::call_state::ended);
    CHECK(proto::read_u32(*ended->m.find(sig::attr::end_code)) == sig::error::units_exhausted);
  }
  // The next call on the empty card is refused.
  auto again = place(n);
  const Sent* refusal = find(again, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(error_code(*refusal) == sig::error::card_refused);
  REQUIRE(refusal->m.find(sig::attr::card_refusal) != nullptr);
  CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) == static_cast<uint32_t>(CardRefusal::no_units));
}
