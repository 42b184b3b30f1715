#include "lan-agent/doctor.hpp"

#include "lan-agent/table_files.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <regex>

#include "base/files.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/lan_pki.hpp"
#include "lan-agent/table_files.hpp"

namespace tsunagu::lanagent {
namespace {

constexpr std::string_view hook_name = "tsunagu-dhcp-hook";

std::string trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t\r");
  return std::string(text.substr(begin, end - begin + 1));
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// One hook path a server calls: an executable file that is our hook, or a
// wrapper script that runs it.
void check_hook_program(ops::DoctorReport& report, const std::string& server, const std::string& file,
                        const std::string& path) {
  std::string check = server + " hook " + path + " (" + file + ")";
  struct stat st {};
  if (path.empty() || path.front() != '/') return report.fail(check, "not an absolute path; use the hook's full path");
  if (stat(path.c_str(), &st) != 0)
    return report.fail(check, "no such file; point it at the installed tsunagu-dhcp-hook (docs/lan-agent.md)");
  if (!S_ISREG(st.st_mode)) return report.fail(check, "not a regular file");
  if (access(path.c_str(), X_OK) != 0 || (st.st_mode & 0111) == 0)
    return report.fail(check, "not executable; run: chmod 755 " + path);
  if ((st.st_mode & 0002) != 0)
    return report.fail(check, "anyone can change it, and the server runs it (as root for dnsmasq); run: chmod o-w " + path);
  std::string base = path.substr(path.rfind('/') + 1);
  if (base == hook_name) return report.ok(check, "executable");
  auto text = read_text_file(path, 64 * 1024);
  if (text && text->find(hook_name) != std::string::npos) return report.ok(check, "a wrapper that runs tsunagu-dhcp-hook");
  report.warn(check, "not tsunagu-dhcp-hook and does not mention it; chain the old script with hook.chain instead");
}

void check_hook_wiring(ops::DoctorReport& report, const DhcpServerFiles& dhcp) {
  size_t files = 0;
  auto each = [&](const std::vector<std::string>& paths, const std::string& server,
                  std::vector<std::string> (*find)(std::string_view), std::string_view missing) {
    for (const auto& file : paths) {
      ++files;
      auto text = read_text_file(file, 4 << 20);
      if (!text) {
        report.warn(server + " configuration " + file, "cannot read it (" + text.error() + ")");
        continue;
      }
      auto hooks = find(*text);
      if (hooks.empty()) {
        report.fail(server + " configuration " + file, std::string(missing));
        continue;
      }
      for (const auto& hook : hooks) check_hook_program(report, server, file, hook);
      if (server == "dnsmasq" && text->find("script-on-renewal") == std::string::npos)
        report.warn(server + " configuration " + file,
                    "no script-on-renewal: renewals do not reach the agent; add the line script-on-renewal");
    }
  };
  // A dnsmasq.d file without dhcp-script= is normal: only one file needs it.
  std::vector<std::string> dnsmasq_with_script;
  for (const auto& file : dhcp.dnsmasq) {
    auto text = read_text_file(file, 4 << 20);
    if (!text || !dnsmasq_hook_paths(*text).empty() || dhcp.dnsmasq.size() == 1) dnsmasq_with_script.push_back(file);
  }
  if (dnsmasq_with_script.empty() && !dhcp.dnsmasq.empty()) {
    report.fail("dnsmasq configuration " + dhcp.dnsmasq.front() + " and the rest",
                "no dhcp-script=: add dhcp-script=/usr/lib/tsunagu/tsunagu-dhcp-hook and script-on-renewal");
    ++files;
  }
  each(dnsmasq_with_script, "dnsmasq", dnsmasq_hook_paths,
       "no dhcp-script=: add dhcp-script=/usr/lib/tsunagu/tsunagu-dhcp-hook and script-on-renewal");
  each(dhcp.kea, "Kea", kea_hook_paths,
       "no libdhcp_run_script.so hook: add it to \"hooks-libraries\" with \"name\" = the tsunagu-dhcp-hook path");
  each(dhcp.isc, "ISC dhcpd", isc_hook_paths,
       "no execute(\"...tsunagu-dhcp-hook\", ...) in on commit / on release / on expiry");
  if (files == 0)
    report.warn("DHCP server hook", "no dnsmasq, Kea or ISC dhcpd configuration found; lease events then come only "
                                    "from lease-file syncs (give --dnsmasq-conf, --kea-conf or --isc-conf)");
}

}  // namespace

DhcpServerFiles default_dhcp_server_files() {
  DhcpServerFiles files;
  if (exists("/etc/dnsmasq.conf")) files.dnsmasq.push_back("/etc/dnsmasq.conf");
  if (DIR* dir = opendir("/etc/dnsmasq.d")) {
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') names.push_back(std::string("/etc/dnsmasq.d/") + entry->d_name);
    closedir(dir);
    std::sort(names.begin(), names.end());
    files.dnsmasq.insert(files.dnsmasq.end(), names.begin(), names.end());
  }
  for (const char* kea : {"/etc/kea/kea-dhcp4.conf", "/etc/kea/kea-dhcp6.conf"})
    if (exists(kea)) files.kea.emplace_back(kea);
  if (exists("/etc/dhcp/dhcpd.conf")) files.isc.emplace_back("/etc/dhcp/dhcpd.conf");
  return files;
}

std::vector<std::string> dnsmasq_hook_paths(std::string_view text) {
  std::vector<std::string> paths;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string line = trim(text.substr(at, end - at));
    at = end + 1;
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("--")) line = line.substr(2);
    size_t equals = line.find('=');
    // The key itself: dhcp-scriptuser= is another option.
    if (equals == std::string::npos || trim(std::string_view(line).substr(0, equals)) != "dhcp-script") continue;
    std::string value = trim(std::string_view(line).substr(equals + 1));
    if (size_t hash = value.find(" #"); hash != std::string::npos) value = trim(value.substr(0, hash));
    paths.push_back(value);
  }
  return paths;
}

std::vector<std::string> kea_hook_paths(std::string_view text) {
  std::vector<std::string> paths;
  static const std::regex name(R"re("name"\s*:\s*"([^"]*)")re");
  size_t at = 0;
  while ((at = text.find("libdhcp_run_script", at)) != std::string_view::npos) {
    std::string rest(text.substr(at, 2048));
    std::smatch match;
    if (std::regex_search(rest, match, name)) paths.push_back(match[1]);
    at += 18;
  }
  return paths;
}

std::vector<std::string> isc_hook_paths(std::string_view text) {
  std::vector<std::string> paths;
  static const std::regex call(R"re(execute\s*\(\s*"([^"]*)")re");
  std::string whole(text);
  for (auto it = std::sregex_iterator(whole.begin(), whole.end(), call); it != std::sregex_iterator(); ++it) {
    std::string path = (*it)[1];
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
  }
  return paths;
}

ops::DoctorReport run_agent_doctor(const std::string& config_file, const DhcpServerFiles& dhcp, ops::DoctorClock clock) {
  ops::DoctorReport report;
  AgentConfig config;
  try {
    config = load_agent_config(config_file);
  } catch (const std::exception& error) {
    report.fail("configuration " + config_file, error.what());
    return report;
  }
  report.ok("configuration " + config_file, "parses");
  ops::check_clock(report, clock);
  ops::check_data_directory(report, config.data_directory, "data directory");
  std::string table_directory = table_paths(config.data_directory).table_directory;
  if (exists(table_directory + "/data.mdb"))
    ops::check_map_usage(report, table_directory, static_cast<uint64_t>(config.table.map_size_mib) << 20,
                         "allocation table");
  else
    report.warn("allocation table " + table_directory, "no data.mdb yet: the agent has not run");
  if (config.node) {
    ops::check_certificate(report, config.node->ca_certificate, "node CA certificate", clock);
    ops::check_certificate(report, config.node->certificate, "agent certificate", clock);
    ops::check_private_key(report, config.node->private_key, "agent key");
  } else {
    report.ok("node link", "no [node] section: LAN-only mode");
  }
  LanPkiFiles lan = lan_pki_files(config.data_directory);
  if (exists(lan.ca_certificate)) {
    ops::check_certificate(report, lan.ca_certificate, "LAN CA certificate", clock);
    ops::check_private_key(report, lan.ca_key, "LAN CA key");
  }
  if (exists(config.hook.spool_directory)) {
    struct stat st {};
    stat(config.hook.spool_directory.c_str(), &st);
    if ((st.st_mode & 0002) != 0 && (st.st_mode & S_ISVTX) == 0)
      report.fail("hook spool " + config.hook.spool_directory,
                  "anyone can write here and there is no sticky bit; the agent makes it 1770 when it starts");
    else
      report.ok("hook spool " + config.hook.spool_directory);
  } else {
    report.warn("hook spool " + config.hook.spool_directory, "missing: the agent creates it when it starts");
  }
  if (!config.web.listen.empty()) {
    ops::check_listen_port(report, config.web.listen, false, "web.listen", "tsunagu-lan-agent");
    // The agent refuses to start with a token file it would refuse here.
    const std::string& file = config.web.token_file;
    if (auto token = read_web_token(file); token) {
      report.ok("web token " + file, "not readable by others, " + std::to_string(token->size()) + " characters");
    } else {
      std::string why = token.error().starts_with(file + ": ") ? token.error().substr(file.size() + 2) : token.error();
      report.fail("web token " + file, why + "; the agent does not start with it");
    }
  }
  check_hook_wiring(report, dhcp);
  return report;
}

}  // namespace tsunagu::lanagent
