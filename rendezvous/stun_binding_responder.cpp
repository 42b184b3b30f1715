#include "rendezvous/stun_binding_responder.hpp"

#include <vector>

#include "proto/stun_message.hpp"

namespace tsunagu::rendezvous {
namespace {

// Comprehension-required attributes a Binding request may carry that we can
// accept without acting on them (we do not authenticate Binding requests).
bool understood(uint16_t type) {
  switch (type) {
    case proto::attr::username:
    case proto::attr::message_integrity:
    case 0x001C:  // MESSAGE-INTEGRITY-SHA256
    case 0x001D:  // PASSWORD-ALGORITHM
    case 0x001E:  // USERHASH
    case proto::attr::realm:
    case proto::attr::nonce:
    case 0x0003:  // CHANGE-REQUEST (RFC 5780); we have one address, answer from it
    case 0x0024:  // PRIORITY (ICE)
    case 0x0025:  // USE-CANDIDATE (ICE)
    case 0x0026:  // PADDING (RFC 5780)
    case 0x0027:  // RESPONSE-PORT (RFC 5780)
      return true;
    default:
      return type >= 0x8000;
  }
}

}  // namespace

bool StunBindingResponder::answer(ByteView datagram, const proto::SocketAddress& from, Bytes& out) {
  out.clear();
  auto decoded = proto::decode(datagram, 1500, /*allow_classic=*/true);
  if (!decoded || decoded->consumed != datagram.size()) {
    ++counters_.dropped;
    return false;
  }
  const proto::Message& request = decoded->message;
  if (request.message_class != proto::MessageClass::request || request.method != proto::method_binding) {
    ++counters_.dropped;
    return false;
  }
  if (request.classic) {
    auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::success);
    builder.add_address(proto::attr::mapped_address, from);
    out = builder.finish(/*with_fingerprint=*/false);
    ++counters_.classic;
    ++counters_.answered;
    return true;
  }
  std::vector<uint16_t> unknown;
  for (const auto& attribute : request.attributes)
    if (!understood(attribute.type)) unknown.push_back(attribute.type);
  if (!unknown.empty()) {
    Bytes list(unknown.size() * 2);
    for (size_t i = 0; i < unknown.size(); ++i) store_be16(list.data() + 2 * i, unknown[i]);
    auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
    builder.add_error(420, "Unknown Attribute").add(proto::attr::unknown_attributes, list);
    builder.add_string(proto::attr::software, software_);
    out = builder.finish(request.has_fingerprint);
    ++counters_.unknown_attributes;
    return true;
  }
  auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::success);
  builder.add_xor_address(proto::attr::xor_mapped_address, from);
  builder.add_string(proto::attr::software, software_);
  out = builder.finish(/*with_fingerprint=*/true);
  ++counters_.answered;
  return true;
}

}  // namespace tsunagu::rendezvous
