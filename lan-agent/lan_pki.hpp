// The LAN agent's private CA for its terminals: made on first use in
// DATA_DIRECTORY/lan/ (ca.crt, ca.key, agent.crt, agent.key), and the
// certificate bundles it issues to LAN terminals (`tsunagu-lan-agent terminal
// issue EXT --out DIR` writes terminal.crt, terminal.key, ca.crt).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "lan-agent/terminal_certificates.hpp"

namespace tsunagu::lanagent {

struct LanPkiFiles {
  std::string ca_certificate, ca_key, agent_certificate, agent_key;
};

LanPkiFiles lan_pki_files(const std::string& data_directory);
// Creates the CA and the agent's own certificate when missing; returns where
// they are.
Expected<LanPkiFiles, std::string> ensure_lan_pki(const std::string& data_directory, const std::string& agent_name);
// The status page's server certificate, issued by the LAN CA for the IP
// address the page listens on (subjectAltName IP), created when missing;
// one pair per address, so changing web.listen issues a new one.
struct WebCertificateFiles {
  std::string certificate, key;
};
Expected<WebCertificateFiles, std::string> ensure_web_certificate(const std::string& data_directory,
                                                                  const std::string& agent_name,
                                                                  const std::string& ip_address);
struct TerminalIssue {
  int valid_days = kTerminalCertificateDays;
  bool renew = false;  // out_directory must hold that extension's certificate already
  int64_t now = 0;     // recorded in the `issued` ledger
};
// Issues a terminal certificate for `extension` into out_directory (created
// 0700) and records its serial in the `issued` ledger (terminal_certificates.hpp);
// returns a one-line summary.
Expected<std::string, std::string> issue_terminal_bundle(const std::string& data_directory,
                                                         const std::string& agent_name, const std::string& extension,
                                                         const std::string& out_directory, TerminalIssue how);
// Revokes every unexpired certificate issued to `extension` (or only `serial`
// when not empty): adds them to the `revoked` ledger, which the running agent
// reads before its next connection to a terminal. Returns what was revoked.
Expected<std::vector<CertificateLedgerEntry>, std::string> revoke_terminal_certificates(
    const std::string& data_directory, const std::string& extension, const std::string& serial, int64_t now);

}  // namespace tsunagu::lanagent
