// How tsunagu-dhcp-hook was called: its own options, which DHCP server called
// it, and the lease events that call means. Pure.
//
// Own options come first and only as separate words: `--config PATH`,
// `--chain PROG` (then the server's arguments; `--` ends the options).
// The server is told by argv[1] (and the environment):
//   dnsmasq:  add old del init tftp arp-add arp-del relay-snoop, or DNSMASQ_* set
//   ISC:      commit release expiry
//   Kea:      lease4_* leases4_* lease6_* leases6_* (the hook point)
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/hook_call.hpp"
#include "allocation/lease_event.hpp"

namespace tsunagu::lanagent {

enum class HookServer { unknown, dnsmasq, isc, kea };
std::string_view to_string(HookServer server);

struct HookOptions {
  std::optional<std::string> config;
  std::optional<std::string> chain;
  size_t first_server_arg = 0;  // index into the arguments (argv[1..])
  std::string error;            // non-empty: an option was malformed
};

HookOptions parse_hook_options(std::span<const std::string_view> args);
HookServer detect_hook_server(std::span<const std::string_view> server_args, std::span<const std::string_view> env);
// The events of one call (empty for calls that carry none, such as dnsmasq's
// init or tftp).
Expected<std::vector<alloc::LeaseEvent>, alloc::ParseError> events_of(HookServer server, const alloc::HookCall& call);

}  // namespace tsunagu::lanagent
