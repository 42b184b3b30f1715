// A node (web_api_harness.hpp's WebNode: NodeCore over a real LMDB store)
// that trusts the sample card issuer, with the sample card (serial 42,
// password 1234-5678-9012) in its ledger and alice and bob logged in as
// terminals. Shared by node_cards_test.cpp and the card_call fuzz target;
// no doctest here.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "cards/card_password.hpp"
#include "rendezvous/card_ledger.hpp"
#include "tests/unit/cards/card_test_support.hpp"
#include "tests/unit/rendezvous/web_api_harness.hpp"

namespace tsunagu::rendezvous::testing {

inline constexpr LinkId card_alice_link = 1, card_bob_link = 2;
inline const std::string sample_card_password = "1234-5678-9012";

inline NodeSettings card_node_settings(const cards::test::Issuer& issuer, uint32_t debit_interval_s,
                                       AreaPrefixes areas = {}, std::shared_ptr<Bytes> served_update = {},
                                       bool connection_agent = false) {
  NodeSettings settings = web_test_settings();
  settings.card_connection_agent = connection_agent;
  settings.card_areas = std::move(areas);
  if (served_update) settings.read_card_update = [served_update] { return *served_update; };
  settings.card_issuers = {issuer.trusted()};
  settings.card_debit_interval_s = debit_interval_s;
  settings.keepalive_interval_s = 3600;  // the tests move the clock by minutes without keepalives
  settings.idle_timeout_s = 86400;
  return settings;
}

struct CardNode {
  cards::test::Issuer issuer;
  cards::Card card = cards::test::sample_card(issuer);
  Bytes card_bytes;
  // What the node reads as the issuer's update (DIR/card_update.cose in a
  // deployment); empty: none. Read at the first card presented.
  std::shared_ptr<Bytes> served_update = std::make_shared<Bytes>();
  WebNode node;
  std::optional<CardLedger> ledger;

  // `adjust`: a test's own settings on top of these.
  explicit CardNode(uint64_t units = 1000, uint32_t debit_interval_s = 60, AreaPrefixes areas = {},
                    bool connection_agent = false, const std::function<void(NodeSettings&)>& adjust = {})
      : node(adjusted(card_node_settings(issuer, debit_interval_s, std::move(areas), served_update, connection_agent),
                      adjust)) {
    auto signed_card = cards::sign_card(card, issuer.key.private_key);
    if (!signed_card) throw std::runtime_error("sign_card");
    card_bytes = *signed_card;
    auto opened = CardLedger::open(node.store().environment());
    if (!opened) throw std::runtime_error("ledger");
    ledger.emplace(*opened);
    auto txn = node.store().environment().begin_write();
    if (!txn) throw std::runtime_error("txn");
    CardAccount account;
    account.serial = card.serial;
    account.card_id = card.card_id.text();
    account.password_hash = cards::hash_card_password(sample_card_password, fast_hashing);
    account.units_issued = card.units_issued;
    account.issued_at = 1'790'000'000;
    account.expires_at = card.expires_at;
    auto added = ledger->add(*txn, account);
    if (!added || !*added) throw std::runtime_error("ledger add");
    if (units != card.units_issued) {
      // Spend down to `units`, as calls before this one would have.
      auto spent = ledger->debit(*txn, card.serial, card.units_issued - units, 1'790'000'000, "earlier calls");
      if (!spent) throw std::runtime_error("ledger debit");
    }
    if (!txn->commit()) throw std::runtime_error("commit");
    node.add_account("alice", "alice's password");
    node.add_account("bob", "bob's password");
    node.terminal_login(card_alice_link, "alice", "alice's password");
    node.terminal_login(card_bob_link, "bob", "bob's password");
    node.take_terminal_actions();
  }

  static NodeSettings adjusted(NodeSettings settings, const std::function<void(NodeSettings&)>& adjust) {
    if (adjust) adjust(settings);
    return settings;
  }

  // alice's call request to bob on the card (the prepare-and-ring form).
  Bytes call_request(const proto::TransactionId& id, ByteView presented, const std::string& password,
                     const std::string& route) const {
    proto::MessageBuilder b(proto::MessageClass::request, proto::method::call, id);
    b.add_u32(proto::attr::protocol_version, proto::protocol_version);
    b.add_string(proto::attr::user_id, "bob");
    b.add_string(proto::attr::ice_description, "alice-offer ufrag pwd");
    b.add(proto::attr::card, presented);
    b.add_string(proto::attr::card_password, password);
    b.add_string(proto::attr::card_route, route);
    return b.finish();
  }

  uint64_t units_left() {
    auto txn = node.store().environment().begin_read();
    if (!txn) throw std::runtime_error("txn");
    auto account = ledger->find(*txn, card.serial);
    if (!account || !account->has_value()) throw std::runtime_error("find");
    return (*account)->units_left;
  }
};

}  // namespace tsunagu::rendezvous::testing
