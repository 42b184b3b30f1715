// `tsunagu-lan-agent doctor`: checks an agent's configuration, files, ports
// and the DHCP servers' hook wiring (docs/lan-agent.md, "Wiring the DHCP
// servers"), and says what to fix.
#pragma once

#include <string>
#include <vector>

#include "ops/doctor_report.hpp"

namespace tsunagu::lanagent {

// The DHCP servers' configuration files to read for the hook wiring.
struct DhcpServerFiles {
  std::vector<std::string> dnsmasq;  // dnsmasq.conf and conf-dir files: dhcp-script=
  std::vector<std::string> kea;      // kea-dhcp4.conf / kea-dhcp6.conf: libdhcp_run_script's "name"
  std::vector<std::string> isc;      // dhcpd.conf: execute("...")
};
// Debian's locations that exist on this host (/etc/dnsmasq.conf, /etc/dnsmasq.d/*,
// /etc/kea/kea-dhcp4.conf, /etc/kea/kea-dhcp6.conf, /etc/dhcp/dhcpd.conf).
DhcpServerFiles default_dhcp_server_files();

// The hook program paths a server's configuration text names.
std::vector<std::string> dnsmasq_hook_paths(std::string_view text);
std::vector<std::string> kea_hook_paths(std::string_view text);
std::vector<std::string> isc_hook_paths(std::string_view text);

ops::DoctorReport run_agent_doctor(const std::string& config_file, const DhcpServerFiles& dhcp, ops::DoctorClock clock);

}  // namespace tsunagu::lanagent
