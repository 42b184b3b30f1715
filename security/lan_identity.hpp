// Who is who on a LAN agent's private CA (docs/calls.md, "LAN terminals").
// The agent's CA issues one certificate to the agent itself and one to each
// LAN terminal, naming the extension; each side checks the other's name after
// the chain verifies, so a host that took a terminal's address cannot answer
// its calls and a terminal cannot pose as the agent.
#pragma once

#include <string>
#include <string_view>

namespace tsunagu::security {

inline constexpr std::string_view lan_agent_common_name = "tsunagu-lan-agent";
inline constexpr std::string_view lan_terminal_name_prefix = "terminal:";

inline std::string lan_terminal_common_name(std::string_view extension) {
  return std::string(lan_terminal_name_prefix) + std::string(extension);
}

}  // namespace tsunagu::security
