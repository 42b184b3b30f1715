// Test helpers: a temporary directory and a small PKI minted by certificates.cpp.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "security/certificates.hpp"

namespace tsunagu::security::testing {

// mkdtemp() directory, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-security-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary);
    out << content;
    REQUIRE(out.good());
    return file;
  }

 private:
  std::string path_;
};

inline KeyAndCertificate make_ca(const std::string& name) {
  auto ca = create_certificate_authority(name, 30);
  REQUIRE_MESSAGE(ca.has_value(), (ca ? "" : ca.error().detail));
  return *ca;
}

inline KeyAndCertificate issue(const KeyAndCertificate& ca, CertificateRequest request) {
  auto issued = issue_certificate(ca, request);
  REQUIRE_MESSAGE(issued.has_value(), (issued ? "" : issued.error().detail));
  return *issued;
}

struct FilePair {
  std::string certificate;
  std::string key;
};

// Two deployments: "ours" (the node's CA) and "theirs" (an unrelated CA).
struct Pki {
  TempDir dir;
  KeyAndCertificate ca = make_ca("Tsunagu Test CA");
  KeyAndCertificate other_ca = make_ca("Some Other CA");
  std::string ca_file = dir.write("ca.pem", ca.certificate_pem);
  std::string other_ca_file = dir.write("other-ca.pem", other_ca.certificate_pem);
  FilePair server = write("server", issue(ca, {.common_name = "node.example",
                                               .dns_names = {"node.example"},
                                               .ip_addresses = {"127.0.0.1", "::1"},
                                               .usage = CertificateRequest::Usage::server}));
  FilePair client = write("client", issue(ca, {.common_name = "agent-7",
                                               .dns_names = {},
                                               .ip_addresses = {},
                                               .usage = CertificateRequest::Usage::client}));
  FilePair foreign_client = write("foreign", issue(other_ca, {.common_name = "intruder",
                                                              .dns_names = {},
                                                              .ip_addresses = {},
                                                              .usage = CertificateRequest::Usage::client}));

  FilePair write(const std::string& name, const KeyAndCertificate& issued) const {
    return {dir.write(name + ".pem", issued.certificate_pem), dir.write(name + "-key.pem", issued.private_key_pem)};
  }
};

}  // namespace tsunagu::security::testing
