#include "lan-agent/terminal_identity.hpp"

#include "security/lan_identity.hpp"

namespace tsunagu::lanagent {

std::optional<std::string> terminal_refusal(const transport::TlsLink& link, const std::string& extension,
                                            TerminalRevocations& revocations) {
  auto name = link.peer_common_name();
  if (!name || *name != security::lan_terminal_common_name(extension))
    return "the host at " + link.peer_address().to_string() + " is not extension " + extension +
           "'s terminal (its certificate names " + (name ? "\"" + *name + "\"" : std::string("nobody")) + ")";
  auto serial = link.peer_serial();
  if (!serial || revocations.revoked(*serial))
    return "the certificate of extension " + extension + "'s terminal at " + link.peer_address().to_string() +
           " (serial " + serial.value_or("unknown") + ") is revoked";
  return std::nullopt;
}

}  // namespace tsunagu::lanagent
