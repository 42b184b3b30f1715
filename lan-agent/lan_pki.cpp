#include "lan-agent/lan_pki.hpp"

#include <filesystem>

#include "base/files.hpp"
#include "proto/signalling.hpp"
#include "security/certificates.hpp"
#include "security/lan_identity.hpp"

namespace tsunagu::lanagent {
namespace fs = std::filesystem;
namespace {

constexpr int kCaValidDays = 3650;
constexpr int kLeafValidDays = 825;

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

Expected<std::string, std::string> issue_terminal_bundle(const std::string& data_directory,
                                                         const std::string& agent_name, const std::string& extension,
                                                         const std::string& out_directory) {
  // Extensions are the local part of EXT@DOMAIN: the user-ID character rules.
  if (extension.empty() || extension.find('@') != std::string::npos || !proto::valid_user_id(extension))
    return Unexpected("\"" + extension + "\" is not a valid extension (the part before @ of EXT@DOMAIN)");
  auto files = ensure_lan_pki(data_directory, agent_name);
  if (!files) return Unexpected(files.error());
  auto ca = load_ca(*files);
  if (!ca) return Unexpected(ca.error());
  security::CertificateRequest request;
  request.common_name = security::lan_terminal_common_name(extension);
  request.usage = security::CertificateRequest::Usage::server;
  request.valid_days = kLeafValidDays;
  auto issued = security::issue_certificate(*ca, request);
  if (!issued) return Unexpected("cannot issue the terminal certificate: " + issued.error().detail);
  if (auto made = make_private_directory(out_directory, 0700); !made) return Unexpected(made.error());
  fs::path out(out_directory);
  if (auto written = write_pair((out / "terminal.crt").string(), (out / "terminal.key").string(), *issued); !written)
    return Unexpected(written.error());
  if (auto written = write_file_atomically((out / "ca.crt").string(), ca->certificate_pem, 0644); !written)
    return Unexpected(written.error());
  return "issued a LAN terminal certificate for extension " + extension + " into " + out_directory +
         " (terminal.crt, terminal.key, ca.crt): run `tsunagu listen --lan " + out_directory + "` on the terminal";
}

}  // namespace tsunagu::lanagent
