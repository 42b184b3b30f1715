// A deployment's private CA and the certificates it issues (node, agents,
// LAN terminals). EC P-256 keys, SHA-256 signatures, PEM in and out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"
#include "security/tls_session.hpp"

namespace tsunagu::security {

struct KeyAndCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

struct CertificateRequest {
  std::string common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries ("127.0.0.1", "::1")
  enum class Usage { server, client } usage = Usage::server;
  int valid_days = 825;
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
Expected<KeyAndCertificate, TlsError> create_certificate_authority(std::string_view common_name, int valid_days);
// A leaf certificate signed by `ca`, with a random 128-bit serial.
Expected<KeyAndCertificate, TlsError> issue_certificate(const KeyAndCertificate& ca, const CertificateRequest& request);
// The subject common name of a PEM certificate.
Expected<std::string, TlsError> certificate_common_name(const std::string& certificate_pem);
// What identifies and bounds an issued certificate: its serial number as
// uppercase hex (what a revocation names) and its notAfter in Unix seconds.
struct CertificateFacts {
  std::string serial_hex;
  int64_t not_after = 0;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries, in order
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text ("127.0.0.1", "::1")
};
Expected<CertificateFacts, TlsError> certificate_facts(const std::string& certificate_pem);

}  // namespace tsunagu::security
