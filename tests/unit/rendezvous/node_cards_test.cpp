// Calls on an access card (rendezvous/node_cards.cpp) on a real NodeCore and
// LMDB ledger, driven as the daemon drives it, with the time injected: the
// checks at set-up, the debit per period in the turn's commit, the units
// told to the caller, the end when the card cannot pay.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rendezvous/card_agent.hpp"
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

// Every link's messages, decoded, by link.
std::map<LinkId, std::vector<Sent>> take_by_link(CardNode& n) {
  std::map<LinkId, std::vector<Sent>> by_link;
  for (auto& action : n.node.take_terminal_actions()) {
    if (action.kind != NodeAction::Kind::send) continue;
    Sent s;
    s.bytes = std::make_shared<const Bytes>(std::move(action.message));
    auto decoded = proto::decode(*s.bytes);
    REQUIRE(decoded.has_value());
    s.m = std::move(decoded->message);
    by_link[action.link].push_back(std::move(s));
  }
  return by_link;
}

// alice's messages, and everyone else's as bob's.
struct Turn {
  std::vector<Sent> alice, bob;
};
Turn take(CardNode& n) {
  Turn t;
  for (auto& [link, sent] : take_by_link(n))
    for (auto& s : sent) (link == card_alice_link ? t.alice : t.bob).push_back(std::move(s));
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

TEST_CASE("card_area: the node answers the area of the longest [cards.areas] prefix holding the link's source") {
  AreaPrefixes areas;
  REQUIRE_FALSE(areas.add("198.51.0.0/16", "kanto").has_value());
  REQUIRE_FALSE(areas.add("198.51.100.0/24", "kansai").has_value());  // the harness's links come from 198.51.100.9
  CardNode n(1000, 60, std::move(areas));
  auto ask = [&](LinkId link) {
    proto::MessageBuilder b(proto::MessageClass::request, sig::method::card_area, tid(7));
    b.add_u32(sig::attr::protocol_version, sig::protocol_version);
    n.node.terminal_send(link, b.finish());
    auto sent = sent_to(n, link);
    REQUIRE(sent.size() == 1);
    return sent.front();
  };
  Sent answer = ask(card_alice_link);
  REQUIRE(answer.m.message_class == proto::MessageClass::success);
  REQUIRE(answer.m.find(sig::attr::card_area) != nullptr);
  CHECK(proto::read_string(*answer.m.find(sig::attr::card_area)) == "kansai");

  // Before login: 401, the map is not for anyone who connects.
  constexpr LinkId stranger = 9;
  n.node.core().link_opened(stranger, proto::SocketAddress::v4({198, 51, 100, 10}, 40001), n.node.now());
  Sent refused = ask(stranger);
  CHECK(error_code(refused) == sig::error::unauthenticated);
}

TEST_CASE("card_area: a source no prefix holds (or no [cards.areas]) is answered 404 naming the address") {
  CardNode n;
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::card_area, tid(7));
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  n.node.terminal_send(card_alice_link, b.finish());
  auto sent = sent_to(n, card_alice_link);
  REQUIRE(sent.size() == 1);
  CHECK(error_code(sent.front()) == sig::error::not_found);
  const auto* code = sent.front().m.find(proto::attr::error_code);
  REQUIRE(code != nullptr);
  CHECK(std::string(proto::read_error_code(*code)->reason) == "Not Found: no area for 198.51.100.9");
}

namespace {

// The issuer's update: version 2, revoking serial 7 and the sample card's
// serial when `revoke_sample`, and an area table whose route u-net the card
// itself does not have.
Bytes issuer_update(CardNode& n, bool revoke_sample = false) {
  cards::CardUpdate update;
  update.issuer_key_id = n.card.issuer_key_id;
  update.version = 2;
  update.issued_at = 1'790'000'000;
  cards::Area area;
  area.code = "area-a";
  area.internet = {cards::test::point("u-net", 1)};
  update.areas = {area};
  update.revoked = {7};
  if (revoke_sample) update.revoked.push_back(n.card.serial);
  auto bytes = cards::sign_card_update(update, n.issuer.key.private_key);
  REQUIRE(bytes.has_value());
  return *bytes;
}

std::vector<Sent> card_status(CardNode& n, std::optional<uint64_t> version_held,
                              const std::string& password = sample_card_password) {
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::card_status, tid(5));
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  b.add(sig::attr::card, n.card_bytes);
  b.add_string(sig::attr::card_password, password);
  if (version_held) b.add_u64(sig::attr::card_update_version, *version_held);
  n.node.terminal_send(card_alice_link, b.finish());
  return sent_to(n, card_alice_link);
}

}  // namespace

TEST_CASE("card update: card_status carries the issuer's key and the newer update, not one the terminal has") {
  CardNode n;
  *n.served_update = issuer_update(n);
  auto sent = card_status(n, std::nullopt);
  const Sent* ok = find(sent, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  REQUIRE(ok->m.find(sig::attr::card_update) != nullptr);
  auto served = ok->m.find(sig::attr::card_update)->value;
  CHECK(Bytes(served.begin(), served.end()) == *n.served_update);
  REQUIRE(ok->m.find(sig::attr::card_issuer_key) != nullptr);
  auto key = ok->m.find(sig::attr::card_issuer_key)->value;
  CHECK(Bytes(key.begin(), key.end()) == n.issuer.key.public_key);

  sent = card_status(n, 2);
  ok = find(sent, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(ok->m.find(sig::attr::card_update) == nullptr);  // the terminal has it
  sent = card_status(n, 1);
  ok = find(sent, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(ok->m.find(sig::attr::card_update) != nullptr);
}

TEST_CASE("card update: a route of the update's area table is admitted and priced; the update rides with the units") {
  CardNode n(1000, 60);
  *n.served_update = issuer_update(n);
  auto alice = place(n, "u-net");
  REQUIRE(find(alice, sig::method::call, proto::MessageClass::success) != nullptr);
  const Sent* units = find(alice, sig::method::card_units, proto::MessageClass::indication);
  REQUIRE(units != nullptr);
  CHECK(units->m.find(sig::attr::card_update) != nullptr);
  CHECK(n.units_left() == 999);  // u-net: 1 a minute
}

TEST_CASE("card update: a revoked card's refusal carries the update that revokes it; a forged update is not served") {
  CardNode n;
  Bytes forged = issuer_update(n, true);
  forged.back() ^= std::byte{1};
  *n.served_update = forged;
  auto sent = card_status(n, std::nullopt);
  const Sent* ok = find(sent, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(ok->m.find(sig::attr::card_update) == nullptr);

  n.node.advance_ms(11'000);  // the node reads the file again after card_issuer_reload_s
  *n.served_update = issuer_update(n, true);
  {
    auto txn = n.node.store().environment().begin_write();
    REQUIRE(txn.has_value());
    REQUIRE(n.ledger->revoke(*txn, n.card.serial, 1'790'000'100, "stolen").has_value());
    REQUIRE(txn->commit().has_value());
  }
  auto alice = place(n);
  const Sent* refusal = find(alice, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) == static_cast<uint32_t>(CardRefusal::revoked));
  REQUIRE(refusal->m.find(sig::attr::card_update) != nullptr);
  auto served = refusal->m.find(sig::attr::card_update)->value;
  std::vector<cards::TrustedIssuer> trusted = {n.issuer.trusted()};
  auto decoded = cards::decode_card_update(Bytes(served.begin(), served.end()), trusted);
  REQUIRE(decoded.has_value());
  CHECK(decoded->revokes(n.card.serial));
}

TEST_CASE("reload: a SIGHUP keeps the card issuer keys and the update reader, and applies a new [cards.areas]") {
  CardNode n;
  *n.served_update = issuer_update(n);
  NodeSettings next = web_test_settings();  // what node.toml gives: no issuer keys, no readers
  REQUIRE_FALSE(next.card_areas.add("198.51.100.0/24", "area-b").has_value());
  n.node.core().reload_settings(next);
  auto sent = card_status(n, std::nullopt);
  const Sent* ok = find(sent, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);  // before the fix: invalid (unknown key) after any reload
  CHECK(ok->m.find(sig::attr::card_update) != nullptr);
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::card_area, tid(8));
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  n.node.terminal_send(card_alice_link, b.finish());
  auto answer = sent_to(n, card_alice_link);
  REQUIRE(answer.size() == 1);
  REQUIRE(answer.front().m.find(sig::attr::card_area) != nullptr);
  CHECK(proto::read_string(*answer.front().m.find(sig::attr::card_area)) == "area-b");
}

namespace {

// card_password: the holder sets the card's password, giving the current one.
std::vector<Sent> set_card_password(CardNode& n, const std::string& current, const std::string& chosen) {
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::card_password, tid(6));
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  b.add(sig::attr::card, n.card_bytes);
  b.add_string(sig::attr::card_password, current);
  b.add_string(sig::attr::card_new_password, chosen);
  n.node.terminal_send(card_alice_link, b.finish());
  n.node.pump();  // the new password's hash is a second job
  return sent_to(n, card_alice_link);
}

std::optional<uint32_t> refusal_of(const std::vector<Sent>& sent, uint16_t method) {
  const Sent* refused = find(sent, method, proto::MessageClass::error);
  if (refused == nullptr || refused->m.find(sig::attr::card_refusal) == nullptr) return std::nullopt;
  return proto::read_u32(*refused->m.find(sig::attr::card_refusal));
}

}  // namespace

TEST_CASE("card password: the holder's password replaces the printed one, in the ledger as scrypt") {
  CardNode n;
  auto sent = set_card_password(n, sample_card_password, "7391 2204 5518");
  REQUIRE(find(sent, sig::method::card_password, proto::MessageClass::success) != nullptr);
  auto txn = n.node.store().environment().begin_read();
  REQUIRE(txn.has_value());
  auto account = *n.ledger->find(*txn, n.card.serial);
  CHECK(account->password_hash.starts_with("$scrypt$"));
  CHECK(cards::check_card_password("7391-2204-5518", account->password_hash));
  CHECK_FALSE(cards::check_card_password(sample_card_password, account->password_hash));
  auto events = *n.ledger->history(*txn, n.card.serial, 0, 10);
  CHECK(events.back().kind == CardEventKind::password_set);
  txn->abort();

  // The printed password is refused from now on, for a status and for a call; the holder's works.
  CHECK(refusal_of(card_status(n, std::nullopt), sig::method::card_status) ==
        static_cast<uint32_t>(CardRefusal::bad_password));
  CHECK(refusal_of(place(n), sig::method::call) == static_cast<uint32_t>(CardRefusal::bad_password));
  CHECK(find(card_status(n, std::nullopt, "739122045518"), sig::method::card_status, proto::MessageClass::success) !=
        nullptr);
  auto alice = place(n, "a-net-2", "7391-2204-5518");
  CHECK(find(alice, sig::method::call, proto::MessageClass::success) != nullptr);
}

TEST_CASE("card password: a wrong current password is refused and then limited; a short new one is a bad request") {
  CardNode n;
  auto sent = set_card_password(n, sample_card_password, "12-34-56");
  const Sent* bad = find(sent, sig::method::card_password, proto::MessageClass::error);
  REQUIRE(bad != nullptr);
  CHECK(error_code(*bad) == sig::error::bad_request);

  bool limited = false;
  int refused = 0;
  for (int attempt = 0; attempt < 30 && !limited; ++attempt) {
    sent = set_card_password(n, "0000-0000-0000", "thief-password-1");
    const Sent* answer = find(sent, sig::method::card_password, proto::MessageClass::error);
    REQUIRE(answer != nullptr);
    if (error_code(*answer) == sig::error::too_many_attempts) limited = true;
    else if (refusal_of(sent, sig::method::card_password) == static_cast<uint32_t>(CardRefusal::bad_password)) ++refused;
  }
  CHECK(refused >= 1);
  CHECK(limited);
  // Limited for this card and source even with the right password, as logins are.
  sent = set_card_password(n, sample_card_password, "thief-password-1");
  const Sent* answer = find(sent, sig::method::card_password, proto::MessageClass::error);
  REQUIRE(answer != nullptr);
  CHECK(error_code(*answer) == sig::error::too_many_attempts);
  auto txn = n.node.store().environment().begin_read();
  REQUIRE(txn.has_value());
  CHECK(cards::check_card_password(sample_card_password, (*n.ledger->find(*txn, n.card.serial))->password_hash));
}

namespace {

constexpr LinkId holder_link = 3;  // a card holder with no account on the node

// The holder's link, open but not logged in, places a card call to bob.
std::vector<Sent> place_as_holder(CardNode& n, const std::string& route, std::string password = sample_card_password,
                                  bool open_link = true) {
  if (open_link) n.node.core().link_opened(holder_link, proto::SocketAddress::v4({203, 0, 113, 5}, 41000), n.node.now());
  n.node.core().message(holder_link, n.call_request(tid(7), n.card_bytes, password, route), n.node.now());
  n.node.pump();
  return sent_to(n, holder_link);
}

}  // namespace

TEST_CASE("connection agent: a holder with no login is placed through the card's agent route and debited at its price") {
  CardNode n(1000, 60, {}, /*connection_agent=*/true);
  n.node.core().link_opened(holder_link, proto::SocketAddress::v4({203, 0, 113, 5}, 41000), n.node.now());
  n.node.core().message(holder_link, n.call_request(tid(7), n.card_bytes, sample_card_password, "a-agent"),
                        n.node.now());
  n.node.pump();
  auto by_link = take_by_link(n);
  std::vector<Sent>& holder = by_link[holder_link];
  std::vector<Sent>& bob = by_link[card_bob_link];
  REQUIRE(find(holder, sig::method::call, proto::MessageClass::success) != nullptr);
  CHECK(units_told(holder) == 1000);
  const Sent* ring = find(bob, sig::method::ring, proto::MessageClass::request);
  REQUIRE(ring != nullptr);
  CHECK(proto::read_string(*ring->m.find(sig::attr::caller_id)) == "card-" + n.card.card_id.text());
  CHECK(sig::valid_user_id(agent_caller_id(n.card.card_id)));
  CHECK(sig::valid_user_id(agent_caller_id(cards::CardId{99991231, 9999, 999999})));
  auto ok = proto::MessageBuilder::response_to(ring->m, proto::MessageClass::success);
  ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
  ok.add_string(sig::attr::ice_description, "bob-answer ufrag pwd");
  n.node.core().message(card_bob_link, ok.finish(), n.node.now());
  n.node.pump();
  n.node.tick();
  CHECK(n.units_left() == 994);  // a-agent: 6 a minute
  advance(n, 60);
  CHECK(n.units_left() == 988);
  // The login deadline no longer closes the holder's link: the call goes on.
  advance(n, 120);
  CHECK(n.units_left() == 976);
  // Without its card, the holder's link places no call: it has no account.
  proto::MessageBuilder free_call(proto::MessageClass::request, sig::method::call, tid(8));
  free_call.add_u32(sig::attr::protocol_version, sig::protocol_version);
  free_call.add_string(sig::attr::user_id, "alice");
  n.node.core().message(holder_link, free_call.finish(), n.node.now());
  n.node.pump();
  auto refused = sent_to(n, holder_link);
  const Sent* refusal = find(refused, sig::method::call, proto::MessageClass::error);
  REQUIRE(refusal != nullptr);
  CHECK(error_code(*refusal) == sig::error::unauthenticated);
  n.node.terminal_gone(holder_link);
  advance(n, 120);
  CHECK(n.units_left() == 976);
}

TEST_CASE("connection agent: no login is refused by a node that is not an agent, and through a route that is not an agent") {
  SUBCASE("not an agent") {
    CardNode n;
    auto holder = place_as_holder(n, "a-agent");
    const Sent* refusal = find(holder, sig::method::call, proto::MessageClass::error);
    REQUIRE(refusal != nullptr);
    CHECK(error_code(*refusal) == sig::error::unauthenticated);
  }
  SUBCASE("an internet route") {
    CardNode n(1000, 60, {}, true);
    auto holder = place_as_holder(n, "a-net-2");
    const Sent* refusal = find(holder, sig::method::call, proto::MessageClass::error);
    REQUIRE(refusal != nullptr);
    CHECK(error_code(*refusal) == sig::error::bad_request);
    CHECK(n.node.core().counters().card_calls_admitted == 0);
  }
  SUBCASE("a wrong password, then a revoked card") {
    CardNode n(1000, 60, {}, true);
    auto holder = place_as_holder(n, "a-agent", "0000-0000-0000");
    const Sent* refusal = find(holder, sig::method::call, proto::MessageClass::error);
    REQUIRE(refusal != nullptr);
    CHECK(error_code(*refusal) == sig::error::card_refused);
    CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) ==
          static_cast<uint32_t>(CardRefusal::bad_password));
    {
      auto txn = n.node.store().environment().begin_write();
      REQUIRE(txn.has_value());
      REQUIRE(n.ledger->revoke(*txn, n.card.serial, 1'790'000'100, "stolen").has_value());
      auto committed = txn->commit();
      REQUIRE(committed);
    }
    holder = place_as_holder(n, "a-agent", sample_card_password, /*open_link=*/false);
    refusal = find(holder, sig::method::call, proto::MessageClass::error);
    REQUIRE(refusal != nullptr);
    CHECK(proto::read_u32(*refusal->m.find(sig::attr::card_refusal)) == static_cast<uint32_t>(CardRefusal::revoked));
    CHECK(n.units_left() == 1000);
  }
}

namespace {

// A node that hands out TURN credentials, its own [turn] server 192.0.2.9:3478,
// and resolves card relay names through the test (as the daemon would).
void with_relay_names(NodeSettings& settings) {
  settings.resolve_relay_names = true;
  settings.turn_secret = "turn-secret";
  settings.turn_servers = {proto::SocketAddress::v4({192, 0, 2, 9}, 3478)};
}

// alice prepares a call to bob on the card through a-net-2 (no offer: the
// answer carries the TURN servers to gather on).
void prepare(CardNode& n) {
  proto::MessageBuilder b(proto::MessageClass::request, proto::method::call, tid(9));
  b.add_u32(proto::attr::protocol_version, proto::protocol_version);
  b.add_string(proto::attr::user_id, "bob");
  b.add(proto::attr::card, n.card_bytes);
  b.add_string(proto::attr::card_password, sample_card_password);
  b.add_string(proto::attr::card_route, "a-net-2");
  n.node.core().message(card_alice_link, b.finish(), n.node.now());
  n.node.pump();
}

std::vector<proto::SocketAddress> turn_servers_of(const Sent& s) {
  std::vector<proto::SocketAddress> servers;
  for (const auto& a : s.m.attributes)
    if (a.type == sig::attr::turn_server)
      if (auto address = proto::read_xor_address(a, s.m)) servers.push_back(*address);
  return servers;
}

}  // namespace

TEST_CASE("relay names: a card call waits for its route's relay name and is handed the relay it resolved to") {
  CardNode n(1000, 60, {}, false, with_relay_names);
  prepare(n);
  // The password was checked; the call waits for turn:a-net-2.example.net:3478.
  CHECK(find(sent_to(n, card_alice_link), sig::method::call, proto::MessageClass::success) == nullptr);
  CHECK(n.node.core().take_relay_name_lookups() == std::vector<std::string>{"a-net-2.example.net"});
  CHECK_FALSE(n.node.core().relay_name_resolved(
      "a-net-2.example.net",
      {proto::SocketAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0),
       proto::SocketAddress::v4({127, 0, 0, 1}, 0)},
      n.node.now()));
  n.node.pump();
  auto alice = sent_to(n, card_alice_link);
  const Sent* ok = find(alice, sig::method::call, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(turn_servers_of(*ok) == std::vector{proto::SocketAddress::v4({127, 0, 0, 1}, 3478)});
  // The next call on the card within the TTL does not look it up again and does not wait.
  n.node.terminal_gone(card_alice_link);
  n.node.terminal_login(card_alice_link, "alice", "alice's password");
  n.node.take_terminal_actions();
  prepare(n);
  CHECK(n.node.core().take_relay_name_lookups().empty());
  auto again = sent_to(n, card_alice_link);  // kept: ok points into it
  ok = find(again, sig::method::call, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(turn_servers_of(*ok) == std::vector{proto::SocketAddress::v4({127, 0, 0, 1}, 3478)});
}

TEST_CASE("relay names: a name that does not resolve, or no answer in time, falls back to the node's [turn] servers") {
  const std::vector<proto::SocketAddress> own{proto::SocketAddress::v4({192, 0, 2, 9}, 3478)};
  SUBCASE("the lookup fails: reported once for the daemon's log") {
    CardNode n(1000, 60, {}, false, with_relay_names);
    prepare(n);
    CHECK(n.node.core().take_relay_name_lookups().size() == 1);
    CHECK(n.node.core().relay_name_resolved("a-net-2.example.net", {}, n.node.now()));
    n.node.pump();
    auto answers = sent_to(n, card_alice_link);  // kept: ok points into it
    const Sent* ok = find(answers, sig::method::call, proto::MessageClass::success);
    REQUIRE(ok != nullptr);
    CHECK(turn_servers_of(*ok) == own);
  }
  SUBCASE("no answer within relay_name_wait_ms: the call goes on without it") {
    CardNode n(1000, 60, {}, false, with_relay_names);
    prepare(n);
    CHECK(n.node.core().take_relay_name_lookups().size() == 1);
    n.node.advance_ms(1999);
    n.node.tick();
    CHECK(find(sent_to(n, card_alice_link), sig::method::call, proto::MessageClass::success) == nullptr);
    n.node.advance_ms(1);
    n.node.tick();
    auto answers = sent_to(n, card_alice_link);  // kept: ok points into it
    const Sent* ok = find(answers, sig::method::call, proto::MessageClass::success);
    REQUIRE(ok != nullptr);
    CHECK(turn_servers_of(*ok) == own);
    // The late answer is kept for the next call and resumes nothing twice.
    CHECK_FALSE(n.node.core().relay_name_resolved("a-net-2.example.net",
                                                  {proto::SocketAddress::v4({127, 0, 0, 1}, 0)}, n.node.now()));
    n.node.pump();
    CHECK(find(sent_to(n, card_alice_link), sig::method::call, proto::MessageClass::success) == nullptr);
  }
  SUBCASE("without a resolver (the setting off) names are skipped at once, as before") {
    CardNode n(1000, 60, {}, false, [](NodeSettings& s) {
      with_relay_names(s);
      s.resolve_relay_names = false;
    });
    prepare(n);
    CHECK(n.node.core().take_relay_name_lookups().empty());
    auto answers = sent_to(n, card_alice_link);  // kept: ok points into it
    const Sent* ok = find(answers, sig::method::call, proto::MessageClass::success);
    REQUIRE(ok != nullptr);
    CHECK(turn_servers_of(*ok) == own);
  }
}

TEST_CASE("forced change: with holder_password_required a call on the printed password is refused until the holder sets one") {
  CardNode n(1000, 60, {}, false, [](NodeSettings& s) { s.card_holder_password_required = true; });
  // card_status answers with the printed password, and says neither is set yet but one is required.
  auto status = card_status(n, std::nullopt);
  const Sent* ok = find(status, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(ok->m.find(sig::attr::card_password_set) == nullptr);
  CHECK(ok->m.find(sig::attr::card_password_required) != nullptr);
  CHECK(refusal_of(place(n), sig::method::call) == static_cast<uint32_t>(CardRefusal::password_change_required));
  // A wrong password is still refused as wrong (the forced change is told only to one who knows the password).
  CHECK(refusal_of(place(n, "a-net-2", "0000-0000-0000"), sig::method::call) ==
        static_cast<uint32_t>(CardRefusal::bad_password));
  CHECK(n.node.core().counters().card_calls_refused == 2);
  CHECK(n.units_left() == 1000);

  auto sent = set_card_password(n, sample_card_password, "7391 2204 5518");
  REQUIRE(find(sent, sig::method::card_password, proto::MessageClass::success) != nullptr);
  status = card_status(n, std::nullopt, "7391-2204-5518");
  ok = find(status, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  const auto* set = ok->m.find(sig::attr::card_password_set);
  REQUIRE(set != nullptr);
  CHECK(proto::read_u64(*set) == n.node.now().unix_s);
  auto alice = place(n, "a-net-2", "7391-2204-5518");
  CHECK(find(alice, sig::method::call, proto::MessageClass::success) != nullptr);
}

TEST_CASE("forced change: off (the default), the printed password places calls and card_status carries no CARD-PASSWORD-SET") {
  CardNode n;
  auto status = card_status(n, std::nullopt);
  const Sent* ok = find(status, sig::method::card_status, proto::MessageClass::success);
  REQUIRE(ok != nullptr);
  CHECK(ok->m.find(sig::attr::card_password_set) == nullptr);
  CHECK(ok->m.find(sig::attr::card_password_required) == nullptr);
  CHECK(find(place(n), sig::method::call, proto::MessageClass::success) != nullptr);
}

TEST_CASE("web console: an admin reads a card's ledger entry and history and lists cards; others get 403") {
  using nlohmann::json;
  CardNode n(1000, 60);
  REQUIRE(find(set_card_password(n, sample_card_password, "7391 2204 5518"), sig::method::card_password,
               proto::MessageClass::success) != nullptr);
  auto alice = place(n, "a-net-2", "7391-2204-5518");
  REQUIRE(find(alice, sig::method::call, proto::MessageClass::success) != nullptr);
  advance(n, 60);
  n.node.terminal_gone(card_alice_link);
  advance(n, 1);
  {
    auto txn = n.node.store().environment().begin_write();
    REQUIRE(txn.has_value());
    REQUIRE(n.ledger->top_up(*txn, n.card.serial, 50, 1'790'000'200, "desk").has_value());
    REQUIRE(n.ledger->revoke(*txn, n.card.serial, 1'790'000'300, "stolen").has_value());
    REQUIRE(txn->commit().has_value());
  }
  n.node.add_account("root", "admin password", /*admin=*/true);
  Browser root, bob;
  REQUIRE(n.node.log_in(root, "root", "admin password").response.status == 200);
  REQUIRE(n.node.log_in(bob, "bob", "bob's password").response.status == 200);
  const std::string card_path = "/api/admin/cards/" + std::to_string(n.card.serial);

  auto answer = n.node.request(root, "GET", card_path);
  REQUIRE(answer.response.status == 200);
  json card = json::parse(answer.response.body);
  CHECK(card["serial"] == n.card.serial);
  CHECK(card["card_id"] == n.card.card_id.text());
  CHECK(card["units_issued"] == n.card.units_issued);
  CHECK(card["units_left"] == 1046);  // 1000, two periods at 2 a minute, 50 topped up
  CHECK(card["units_left"] == n.units_left());
  CHECK(card["revoked"] == true);
  CHECK(card["revoked_at"] == 1'790'000'300);
  CHECK(card["password"] == "holder");
  CHECK(card["password_set_at"].get<int64_t>() > 0);
  const json& history = card["history"];
  REQUIRE(history.size() == 6);
  CHECK(card["events"] == 6);
  CHECK_FALSE(card.contains("next_from"));
  std::vector<std::string> kinds;
  for (const auto& e : history) kinds.push_back(e["event"].get<std::string>());
  CHECK(kinds == std::vector<std::string>{"issued", "password", "debit", "debit", "top-up", "revoked"});
  const json& debit = history[2];
  CHECK(debit["units"] == 2);
  CHECK(debit["units_left"] == 998);
  CHECK(debit["route"] == "a-net-2");
  CHECK(debit["call"].get<std::string>().size() == 8);
  CHECK(history[4]["units"] == 50);
  CHECK(history[4]["note"] == "desk");
  CHECK(history[5]["note"] == "stolen");
  // The history pages from a sequence.
  json later = json::parse(n.node.request(root, "GET", card_path + "?from=4").response.body);
  REQUIRE(later["history"].size() == 2);
  CHECK(later["history"][0]["event"] == "top-up");

  json list = json::parse(n.node.request(root, "GET", "/api/admin/cards").response.body);
  REQUIRE(list["cards"].size() == 1);
  CHECK(list["cards"][0]["serial"] == n.card.serial);
  CHECK(list["cards"][0]["units_left"] == 1046);
  CHECK_FALSE(list.contains("next_cursor"));
  CHECK(json::parse(n.node.request(root, "GET", "/api/admin/cards?cursor=" + std::to_string(n.card.serial))
                        .response.body)["cards"]
            .empty());

  CHECK(n.node.request(bob, "GET", card_path).response.status == 403);
  CHECK(n.node.request(bob, "GET", "/api/admin/cards").response.status == 403);
  CHECK(n.node.request(Browser{}, "GET", card_path).response.status == 401);
  CHECK(n.node.request(root, "GET", "/api/admin/cards/999999").response.status == 404);
  CHECK(n.node.request(root, "GET", "/api/admin/cards/12x").response.status == 400);
  CHECK(n.node.request(root, "GET", "/api/admin/cards/-1").response.status == 400);
  CHECK(n.node.request(root, "GET", "/api/admin/cards?cursor=abc").response.status == 400);
  CHECK(n.node.request(root, "GET", card_path + "?from=x").response.status == 400);
  CHECK(n.node.request(root, "POST", card_path, "{}").response.status == 405);
}
