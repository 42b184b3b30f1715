#include "lan-agent/lan_pki.hpp"

#include <filesystem>

#include "base/files.hpp"
#include "lan-agent/table_view.hpp"
#include "proto/signalling.hpp"
#include "security/certificates.hpp"
#include "security/lan_identity.hpp"

namespace tsunagu::lanagent {
namespace fs = std::filesystem;
namespace {

constexpr int kCaValidDays = 3650;
constexpr int kLeafValidDays = 825;  // the agent's own; terminals' default is kTerminalCertificateDays

Expected<security::KeyAndCertificate, std::string> load_ca(const LanPkiFiles& files) {
  auto certificate = read_text_file(files.ca_certificate);
  if (!certificate) return Unexpected(certificate.error());
  auto key = read_text_file(files.ca_key);
  if (!key) return Unexpected(key.error());
  return security::KeyAndCertificate{*certificate, *key};
}

Expected<void, std::string> write_pair(const std::string& certificate_path, const std::string& key_path,
                                       const security::KeyAndCertificate& pair) {
  if (auto written = write_file_atomically(key_path, pair.private_key_pem, 0600); !written) return written;
  return write_file_atomically(certificate_path, pair.certificate_pem, 0644);
}

}  // namespace

LanPkiFiles lan_pki_files(const std::string& data_directory) {
  fs::path dir = fs::path(data_directory) / "lan";
  return LanPkiFiles{(dir / "ca.crt").string(), (dir / "ca.key").string(), (dir / "agent.crt").string(),
                     (dir / "agent.key").string()};
}

Expected<LanPkiFiles, std::string> ensure_lan_pki(const std::string& data_directory, const std::string& agent_name) {
  LanPkiFiles files = lan_pki_files(data_directory);
  std::error_code ec;
  fs::path dir = fs::path(files.ca_certificate).parent_path();
  if (auto made = make_private_directory(dir.string(), 0700); !made) return Unexpected(made.error());
  if (!fs::exists(files.ca_certificate) || !fs::exists(files.ca_key)) {
    std::string name = "Tsunagu LAN CA" + (agent_name.empty() ? std::string() : " (" + agent_name + ")");
    auto ca = security::create_certificate_authority(name, kCaValidDays);
    if (!ca) return Unexpected("cannot create the LAN CA: " + ca.error().detail);
    if (auto written = write_pair(files.ca_certificate, files.ca_key, *ca); !written) return Unexpected(written.error());
    fs::remove(files.agent_certificate, ec);  // a new CA invalidates the old agent certificate
  }
  if (!fs::exists(files.agent_certificate) || !fs::exists(files.agent_key)) {
    auto ca = load_ca(files);
    if (!ca) return Unexpected(ca.error());
    security::CertificateRequest request;
    request.common_name = std::string(security::lan_agent_common_name);
    request.usage = security::CertificateRequest::Usage::client;
    request.valid_days = kLeafValidDays;
    auto issued = security::issue_certificate(*ca, request);
    if (!issued) return Unexpected("cannot issue the agent's LAN certificate: " + issued.error().detail);
    if (auto written = write_pair(files.agent_certificate, files.agent_key, *issued); !written)
      return Unexpected(written.error());
  }
  return files;
}

Expected<WebCertificateFiles, std::string> ensure_web_certificate(const std::string& data_directory,
                                                                  const std::string& agent_name,
                                                                  const std::string& ip_address) {
  auto pki = ensure_lan_pki(data_directory, agent_name);
  if (!pki) return Unexpected(pki.error());
  std::string stem = "web-" + ip_address;
  for (char& c : stem)
    if (c == ':') c = '_';  // IPv6 literals in a file name
  fs::path dir = fs::path(pki->ca_certificate).parent_path();
  WebCertificateFiles files{(dir / (stem + ".crt")).string(), (dir / (stem + ".key")).string()};
  if (fs::exists(files.certificate) && fs::exists(files.key)) return files;
  auto ca = load_ca(*pki);
  if (!ca) return Unexpected(ca.error());
  security::CertificateRequest request;
  request.common_name = ip_address;
  request.ip_addresses = {ip_address};
  request.usage = security::CertificateRequest::Usage::server;
  request.valid_days = kLeafValidDays;
  auto issued = security::issue_certificate(*ca, request);
  if (!issued) return Unexpected("cannot issue the status page's certificate: " + issued.error().detail);
  if (auto written = write_pair(files.certificate, files.key, *issued); !written) return Unexpected(written.error());
  return files;
}

Expected<std::string, std::string> issue_terminal_bundle(const std::string& data_directory,
                                                         const std::string& agent_name, const std::string& extension,
                                                         const std::string& out_directory, TerminalIssue how) {
  // Extensions are the local part of EXT@DOMAIN: the user-ID character rules.
  if (extension.empty() || extension.find('@') != std::string::npos || !proto::valid_user_id(extension))
    return Unexpected("\"" + extension + "\" is not a valid extension (the part before @ of EXT@DOMAIN)");
  if (how.valid_days < 1 || how.valid_days > kLeafValidDays)
    return Unexpected("--days must be 1.." + std::to_string(kLeafValidDays));
  fs::path out(out_directory);
  std::string previous_expiry;
  if (how.renew) {
    // Renewing replaces the bundle of that extension, and only that.
    auto old = read_text_file((out / "terminal.crt").string());
    if (!old) return Unexpected(out_directory + " holds no terminal certificate to renew (" + old.error() + "); use issue");
    auto name = security::certificate_common_name(*old);
    if (!name || *name != security::lan_terminal_common_name(extension))
      return Unexpected(out_directory + "/terminal.crt is not extension " + extension + "'s (it names " +
                        (name ? "\"" + *name + "\"" : std::string("nobody")) + ")");
    if (auto facts = security::certificate_facts(*old)) previous_expiry = format_time(facts->not_after);
  }
  auto files = ensure_lan_pki(data_directory, agent_name);
  if (!files) return Unexpected(files.error());
  auto ca = load_ca(*files);
  if (!ca) return Unexpected(ca.error());
  security::CertificateRequest request;
  request.common_name = security::lan_terminal_common_name(extension);
  request.usage = security::CertificateRequest::Usage::server;
  request.valid_days = how.valid_days;
  auto issued = security::issue_certificate(*ca, request);
  if (!issued) return Unexpected("cannot issue the terminal certificate: " + issued.error().detail);
  auto facts = security::certificate_facts(issued->certificate_pem);
  if (!facts) return Unexpected("the issued certificate: " + facts.error().detail);
  if (auto made = make_private_directory(out_directory, 0700); !made) return Unexpected(made.error());
  if (auto written = write_pair((out / "terminal.crt").string(), (out / "terminal.key").string(), *issued); !written)
    return Unexpected(written.error());
  if (auto written = write_file_atomically((out / "ca.crt").string(), ca->certificate_pem, 0644); !written)
    return Unexpected(written.error());
  CertificateLedgerEntry entry{facts->serial_hex, extension, facts->not_after, how.now};
  if (auto recorded = append_to_ledger(terminal_certificate_files(data_directory).issued, {entry}); !recorded)
    return Unexpected("issued, but not recorded (revoke would not find it): " + recorded.error());
  std::string summary = std::string(how.renew ? "renewed" : "issued") + " the LAN terminal certificate of extension " +
                        extension + " into " + out_directory + " (terminal.crt, terminal.key, ca.crt): serial " +
                        facts->serial_hex + ", valid until " + format_time(facts->not_after);
  if (!previous_expiry.empty()) summary += " (the previous one: until " + previous_expiry + ", still valid: revoke it if lost)";
  return summary + "; run `tsunagu listen --lan " + out_directory + "` on the terminal (again, after a renewal)";
}

Expected<std::vector<CertificateLedgerEntry>, std::string> revoke_terminal_certificates(
    const std::string& data_directory, const std::string& extension, const std::string& serial, int64_t now) {
  auto files = terminal_certificate_files(data_directory);
  auto issued = read_ledger(files.issued);
  if (!issued) return Unexpected(issued.error());
  auto revoked = read_ledger(files.revoked);
  if (!revoked) return Unexpected(revoked.error());
  std::vector<CertificateLedgerEntry> add;
  for (const auto& entry : issued->entries) {
    if (entry.extension != extension || (!serial.empty() && entry.serial != serial)) continue;
    bool already = false;
    for (const auto& r : revoked->entries) already = already || r.serial == entry.serial;
    if (!already && entry.not_after > now) add.push_back({entry.serial, entry.extension, entry.not_after, now});
  }
  if (add.empty())
    return Unexpected("no unexpired, unrevoked certificate " + (serial.empty() ? std::string() : serial + " ") +
                      "issued to extension " + extension + " (see `terminal list`)");
  if (auto written = append_to_ledger(files.revoked, add); !written) return Unexpected(written.error());
  return add;
}

}  // namespace tsunagu::lanagent
