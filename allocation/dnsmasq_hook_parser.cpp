#include "allocation/dnsmasq_hook_parser.hpp"

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

Unexpected<ParseError> fail(ParseErrc code, std::string detail) {
  return Unexpected(ParseError{code, std::move(detail), 0});
}

}  // namespace

Expected<std::vector<LeaseEvent>, ParseError> parse_dnsmasq_hook(const HookCall& call) {
  if (auto ok = call.check_limits(); !ok) return Unexpected(ok.error());
  if (call.args.empty()) return fail(ParseErrc::missing_field, "no action argument");
  LeaseEvent e;
  const std::string_view action = call.args[0];
  if (action == "add") {
    e.action = LeaseAction::grant;
  } else if (action == "old") {
    e.action = LeaseAction::renew;
  } else if (action == "del") {
    e.action = LeaseAction::remove;
  } else {
    return std::vector<LeaseEvent>{};  // init, tftp, arp-*, relay-snoop, future actions
  }
  if (call.args.size() < 3) return fail(ParseErrc::missing_field, "dnsmasq call needs ACTION MAC IP");
  e.source = ServerKind::dnsmasq;
  e.reported_at = call.now;
  auto address = parse_ip_address(call.args[2]);
  if (!address) return Unexpected(address.error());
  e.address = *address;
  const bool v6 = e.is_v6() || call.find_env("DNSMASQ_IAID").has_value();
  if (v6 != e.is_v6()) return fail(ParseErrc::bad_address, "DHCPv6 call with an IPv4 address");
  if (v6) {
    auto duid = normalise_client_id(call.args[1]);
    if (!duid) return Unexpected(duid.error());
    e.client_id = std::move(*duid);
    if (auto mac = call.find_env("DNSMASQ_MAC"); mac && !mac->empty()) {
      auto m = normalise_mac(*mac);
      if (!m) return Unexpected(m.error());
      e.mac = std::move(*m);
    }
  } else {
    auto mac = normalise_mac(call.args[1]);
    if (!mac) return Unexpected(mac.error());
    e.mac = std::move(*mac);
    if (auto cid = call.find_env("DNSMASQ_CLIENT_ID"); cid && !cid->empty()) e.client_id = client_id_beside_mac(*cid);
  }
  if (call.args.size() >= 4) {
    auto host = normalise_hostname(call.args[3]);
    if (!host) return Unexpected(host.error());
    e.hostname = std::move(*host);
  }
  if (auto expires = call.find_env("DNSMASQ_LEASE_EXPIRES")) {
    auto v = parse_decimal(*expires);
    if (!v || *v < 0) return fail(ParseErrc::bad_number, "bad DNSMASQ_LEASE_EXPIRES");
    e.expires = *v == 0 ? LeaseEvent::kInfinite : *v;
  } else if (auto remaining = call.find_env("DNSMASQ_TIME_REMAINING")) {
    auto v = parse_decimal(*remaining);
    if (!v || *v < 0) return fail(ParseErrc::bad_number, "bad DNSMASQ_TIME_REMAINING");
    e.expires = call.now + *v;
  }
  if (auto iface = call.find_env("DNSMASQ_INTERFACE"); iface && valid_server_tag(*iface))
    e.server = std::string(*iface);
  return std::vector<LeaseEvent>{std::move(e)};
}

}  // namespace tsunagu::alloc
