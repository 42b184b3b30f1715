#include "allocation/kea_hook_parser.hpp"

#include <string>

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

Unexpected<ParseError> fail(ParseErrc code, std::string detail) {
  return Unexpected(ParseError{code, std::move(detail), 0});
}

// Reads one lease whose variables start with prefix ("LEASE4_", "LEASES6_AT0_", ...).
// Returns nullopt for a v6 prefix delegation.
Expected<std::optional<LeaseEvent>, ParseError> read_lease(const HookCall& call, const std::string& prefix, bool v6,
                                                           LeaseAction action) {
  auto var = [&](const char* name) { return call.find_env(prefix + name); };
  if (v6) {
    if (auto type = var("TYPE"); type && *type == "IA_PD") return std::optional<LeaseEvent>{};
  }
  LeaseEvent e;
  e.action = action;
  e.source = ServerKind::kea;
  auto address_text = var("ADDRESS");
  if (!address_text) return fail(ParseErrc::missing_field, prefix + "ADDRESS missing");
  auto address = parse_ip_address(*address_text);
  if (!address) return Unexpected(address.error());
  if (address->family != (v6 ? proto::SocketAddress::Family::ipv6 : proto::SocketAddress::Family::ipv4))
    return fail(ParseErrc::bad_address, "address of the wrong family");
  e.address = *address;
  if (auto hw = var("HWADDR"); hw && !hw->empty()) {
    auto mac = normalise_mac(*hw);
    if (mac) e.mac = std::move(*mac);  // a non-Ethernet hardware address is not a MAC: dropped
  }
  if (auto cid = var(v6 ? "DUID" : "CLIENT_ID"); cid && !cid->empty() && !v6 && !e.mac.empty()) {
    e.client_id = client_id_beside_mac(*cid);
  } else if (cid && !cid->empty()) {
    auto c = normalise_client_id(*cid);
    if (!c) return Unexpected(c.error());
    e.client_id = std::move(*c);
  }
  if (e.mac.empty() && e.client_id.empty()) return fail(ParseErrc::missing_field, "lease without hwaddr or client-id");
  if (auto host = var("HOSTNAME")) {
    auto h = normalise_hostname(*host);
    if (!h) return Unexpected(h.error());
    e.hostname = std::move(*h);
  }
  auto cltt = var("CLTT");
  auto valid = var("VALID_LIFETIME");
  if (!cltt || !valid) return fail(ParseErrc::missing_field, prefix + "CLTT or VALID_LIFETIME missing");
  auto c = parse_decimal(*cltt);
  auto v = parse_decimal(*valid);
  if (!c || !v || *c < 0 || *v < 0 || *c > (int64_t{1} << 40)) return fail(ParseErrc::bad_number, "bad CLTT or lifetime");
  e.reported_at = *c;
  e.expires = *v >= 0xffffffffLL ? LeaseEvent::kInfinite : *c + *v;
  if (auto iface = call.find_env(v6 ? "QUERY6_IFACE_NAME" : "QUERY4_IFACE_NAME"); iface && valid_server_tag(*iface))
    e.server = std::string(*iface);
  return std::optional<LeaseEvent>{std::move(e)};
}

Expected<void, ParseError> read_list(const HookCall& call, const std::string& list, bool v6, LeaseAction action,
                                     std::vector<LeaseEvent>& out) {
  auto size_text = call.find_env(list + "_SIZE");
  if (!size_text) return {};
  auto size = parse_decimal(*size_text);
  if (!size || *size < 0) return fail(ParseErrc::bad_number, "bad " + list + "_SIZE");
  if (*size > kMaxKeaLeasesPerCall) return fail(ParseErrc::too_large, list + "_SIZE over 256");
  for (int64_t i = 0; i < *size; ++i) {
    auto lease = read_lease(call, list + "_AT" + std::to_string(i) + "_", v6, action);
    if (!lease) return Unexpected(lease.error());
    if (*lease) out.push_back(std::move(**lease));
  }
  return {};
}

}  // namespace

Expected<std::vector<LeaseEvent>, ParseError> parse_kea_hook(const HookCall& call) {
  if (auto ok = call.check_limits(); !ok) return Unexpected(ok.error());
  if (call.args.empty()) return fail(ParseErrc::missing_field, "no hook point argument");
  const std::string_view point = call.args[0];
  std::vector<LeaseEvent> out;
  for (bool v6 : {false, true}) {
    const std::string n = v6 ? "6" : "4";
    if (point == "leases" + n + "_committed") {
      if (auto ok = read_list(call, "LEASES" + n, v6, LeaseAction::grant, out); !ok) return Unexpected(ok.error());
      if (auto ok = read_list(call, "DELETED_LEASES" + n, v6, LeaseAction::release, out); !ok)
        return Unexpected(ok.error());
      return out;
    }
    LeaseAction action;
    if (point == "lease" + n + "_renew" || (v6 && point == "lease6_rebind")) {
      action = LeaseAction::renew;
    } else if (point == "lease" + n + "_release") {
      action = LeaseAction::release;
    } else if (point == "lease" + n + "_expire") {
      action = LeaseAction::expire;
    } else if (point == "lease" + n + "_decline") {
      action = LeaseAction::decline;
    } else if (point == "lease" + n + "_recover") {
      action = LeaseAction::grant;
    } else {
      continue;
    }
    auto lease = read_lease(call, "LEASE" + n + "_", v6, action);
    if (!lease) return Unexpected(lease.error());
    if (*lease) out.push_back(std::move(**lease));
    return out;
  }
  return out;  // a hook point we do not track
}

}  // namespace tsunagu::alloc
