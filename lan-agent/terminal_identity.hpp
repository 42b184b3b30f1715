// The one check before the agent talks to a LAN terminal (a ring, a voicemail
// delivery): its TLS certificate, verified against the agent's LAN CA, names
// `terminal:EXT` for the extension being reached, and its serial is not revoked.
#pragma once

#include <optional>
#include <string>

#include "lan-agent/terminal_certificates.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::lanagent {

// nullopt when the terminal may be rung; otherwise why not, for logs and the caller.
std::optional<std::string> terminal_refusal(const transport::TlsLink& link, const std::string& extension,
                                            TerminalRevocations& revocations);

}  // namespace tsunagu::lanagent
