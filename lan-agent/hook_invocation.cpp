#include "lan-agent/hook_invocation.hpp"

#include <algorithm>
#include <array>

#include "allocation/dnsmasq_hook_parser.hpp"
#include "allocation/isc_hook_parser.hpp"
#include "allocation/kea_hook_parser.hpp"

namespace tsunagu::lanagent {

std::string_view to_string(HookServer server) {
  switch (server) {
    case HookServer::dnsmasq: return "dnsmasq";
    case HookServer::isc: return "isc-dhcpd";
    case HookServer::kea: return "kea";
    default: return "unknown";
  }
}

HookOptions parse_hook_options(std::span<const std::string_view> args) {
  HookOptions options;
  size_t i = 0;
  while (i < args.size()) {
    std::string_view a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a != "--config" && a != "--chain") break;
    if (i + 1 >= args.size() || args[i + 1].empty()) {
      options.error = std::string(a) + " needs a value";
      ++i;
      break;
    }
    (a == "--config" ? options.config : options.chain) = std::string(args[i + 1]);
    i += 2;
  }
  options.first_server_arg = i;
  return options;
}

HookServer detect_hook_server(std::span<const std::string_view> server_args, std::span<const std::string_view> env) {
  static constexpr std::array<std::string_view, 8> kDnsmasq = {"add",     "old",     "del",     "init",
                                                              "tftp",    "arp-add", "arp-del", "relay-snoop"};
  static constexpr std::array<std::string_view, 3> kIsc = {"commit", "release", "expiry"};
  if (server_args.empty()) return HookServer::unknown;
  std::string_view action = server_args[0];
  if (std::find(kDnsmasq.begin(), kDnsmasq.end(), action) != kDnsmasq.end()) return HookServer::dnsmasq;
  if (std::find(kIsc.begin(), kIsc.end(), action) != kIsc.end()) return HookServer::isc;
  for (std::string_view p : {"lease4_", "leases4_", "lease6_", "leases6_"})
    if (action.starts_with(p)) return HookServer::kea;
  // An action this build does not know, from a newer dnsmasq.
  for (std::string_view e : env)
    if (e.starts_with("DNSMASQ_")) return HookServer::dnsmasq;
  return HookServer::unknown;
}

Expected<std::vector<alloc::LeaseEvent>, alloc::ParseError> events_of(HookServer server, const alloc::HookCall& call) {
  switch (server) {
    case HookServer::dnsmasq: return alloc::parse_dnsmasq_hook(call);
    case HookServer::isc: return alloc::parse_isc_hook(call);
    case HookServer::kea: return alloc::parse_kea_hook(call);
    default: return std::vector<alloc::LeaseEvent>{};
  }
}

}  // namespace tsunagu::lanagent
