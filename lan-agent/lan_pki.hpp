// The LAN agent's private CA for its terminals: made on first use in
// DATA_DIRECTORY/lan/ (ca.crt, ca.key, agent.crt, agent.key), and the
// certificate bundles it issues to LAN terminals (`tsunagu-lan-agent terminal
// issue EXT --out DIR` writes terminal.crt, terminal.key, ca.crt).
#pragma once

#include <string>

#include "base/expected.hpp"

namespace tsunagu::lanagent {

struct LanPkiFiles {
  std::string ca_certificate, ca_key, agent_certificate, agent_key;
};

LanPkiFiles lan_pki_files(const std::string& data_directory);
// Creates the CA and the agent's own certificate when missing; returns where
// they are.
Expected<LanPkiFiles, std::string> ensure_lan_pki(const std::string& data_directory, const std::string& agent_name);
// Issues a terminal certificate for `extension` into out_directory (created
// 0700); returns a one-line summary.
Expected<std::string, std::string> issue_terminal_bundle(const std::string& data_directory,
                                                         const std::string& agent_name, const std::string& extension,
                                                         const std::string& out_directory);

}  // namespace tsunagu::lanagent
