#include "allocation/isc_hook_parser.hpp"

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {

Expected<std::vector<LeaseEvent>, ParseError> parse_isc_hook(const HookCall& call) {
  if (auto ok = call.check_limits(); !ok) return Unexpected(ok.error());
  if (call.args.size() < 3) return Unexpected(ParseError{ParseErrc::missing_field, "dhcpd call needs ACTION IP MAC", 0});
  LeaseEvent e;
  const std::string_view action = call.args[0];
  if (action == "commit") {
    e.action = LeaseAction::grant;
  } else if (action == "release") {
    e.action = LeaseAction::release;
  } else if (action == "expiry") {
    e.action = LeaseAction::expire;
  } else {
    return Unexpected(ParseError{ParseErrc::bad_syntax, "dhcpd action is not commit, release or expiry", 0});
  }
  e.source = ServerKind::isc_dhcpd;
  e.reported_at = call.now;
  auto address = parse_ip_address(call.args[1]);
  if (!address) return Unexpected(address.error());
  e.address = *address;
  auto mac = normalise_mac(call.args[2]);
  if (!mac) return Unexpected(mac.error());
  e.mac = std::move(*mac);
  if (call.args.size() >= 4) {
    auto host = normalise_hostname(call.args[3]);
    if (!host) return Unexpected(host.error());
    e.hostname = std::move(*host);
  }
  if (call.args.size() >= 5 && !call.args[4].empty()) {
    auto seconds = parse_decimal(call.args[4]);
    if (!seconds || *seconds < 0) return Unexpected(ParseError{ParseErrc::bad_number, "bad lease seconds", 0});
    // 0xffffffff is dhcpd's "infinite".
    e.expires = *seconds >= 0xffffffffLL ? LeaseEvent::kInfinite : call.now + *seconds;
  }
  return std::vector<LeaseEvent>{std::move(e)};
}

}  // namespace tsunagu::alloc
