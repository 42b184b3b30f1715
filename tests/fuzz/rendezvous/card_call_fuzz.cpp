// Fuzz target: a call on an access card (rendezvous/node_cards.cpp) on a real
// node (NodeCore, LMDB in a temporary directory) whose ledger holds the
// sample card (serial 42, password 1234-5678-9012), with alice and bob
// logged in. The first input byte picks what is fuzzed: 0 the CARD bytes
// are the rest of the input; 1 the rest is XORed into the valid card from
// the offset its first byte gives; 2 the valid card, with the rest as
// "CARD-PASSWORD\nCARD-ROUTE". With the first byte's top bit set, the call
// comes from a card holder's link that has not logged in (the node is a
// connection agent; the default route is then its agent route "a-agent").
// The call request must be answered exactly once (success, or an error from
// the documented set), and the node must keep serving: the caller's link is
// then closed (alice's is logged in again; the holder's opens with the next input).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "tests/unit/rendezvous/card_node_harness.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One node for the run: state carries over, as in a real one.
  static CardNode* fixture = new CardNode(1000, 60, {}, /*connection_agent=*/true);
  constexpr LinkId holder_link = 3;
  if (size == 0 || size > 20'000) return 0;
  const bool holder = (data[0] & 0x80) != 0;
  const LinkId caller = holder ? holder_link : card_alice_link;
  if (holder) fixture->node.core().link_opened(holder_link, proto::SocketAddress::v4({203, 0, 113, 5}, 41000),
                                               fixture->node.now());
  uint8_t mode = (data[0] & 0x7F) % 3;
  ByteView rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  Bytes card = fixture->card_bytes;
  std::string password = sample_card_password, route = holder ? "a-agent" : "a-net";
  if (mode == 0) {
    card.assign(rest.begin(), rest.end());
  } else if (mode == 1 && !rest.empty()) {
    size_t offset = std::to_integer<size_t>(rest[0]) * 4;
    for (size_t i = 1; i < rest.size(); ++i) card[(offset + i) % card.size()] ^= rest[i];
  } else if (mode == 2) {
    std::string text(as_chars(rest));
    size_t newline = text.find('\n');
    password = text.substr(0, newline);
    route = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  proto::TransactionId id;
  id.bytes[0] = std::byte{0xCA};
  fixture->node.core().message(caller, fixture->call_request(id, card, password, route), fixture->node.now());
  fixture->node.pump();
  static const std::set<uint16_t> documented{400, 401, 402, 429, 480, 486, 503, 507};
  size_t answers = 0;
  for (const auto& action : fixture->node.take_terminal_actions()) {
    if (action.link != caller || action.kind != NodeAction::Kind::send) continue;
    auto decoded = proto::decode(action.message);
    require(decoded.has_value());
    const proto::Message& m = decoded->message;
    if (m.transaction_id.bytes != id.bytes) continue;
    ++answers;
    if (m.message_class == proto::MessageClass::error) {
      const auto* code = m.find(proto::attr::error_code);
      auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
      require(parsed && documented.contains(parsed->code));
    } else {
      require(m.message_class == proto::MessageClass::success);
    }
  }
  require(answers == 1);
  // Whatever the call became ends with the caller's link; alice logs in again.
  fixture->node.terminal_gone(caller);
  if (holder) {
    fixture->node.take_terminal_actions();
    return 0;
  }
  fixture->node.terminal_login(card_alice_link, "alice", "alice's password");
  bool logged_in = false;
  for (const auto& action : fixture->node.take_terminal_actions()) {
    if (action.kind != NodeAction::Kind::send) continue;
    auto decoded = proto::decode(action.message);
    if (decoded && decoded->message.method == proto::method::login &&
        decoded->message.message_class == proto::MessageClass::success)
      logged_in = true;
  }
  require(logged_in);
  return 0;
}
