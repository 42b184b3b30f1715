// The certificates are read back with OpenSSL itself (test-only use) to check
// every field the deployment relies on.
#include "security/certificates.hpp"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/security/test_pki.hpp"

namespace tsunagu::security {
namespace {

using testing::issue;
using testing::make_ca;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using Certificate = std::unique_ptr<X509, X509Deleter>;

Certificate parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  REQUIRE(bio != nullptr);
  Certificate certificate(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  REQUIRE(certificate != nullptr);
  return certificate;
}

bool public_key_is_p256(X509* certificate) {
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  char group[64] = {};
  size_t length = 0;
  return key != nullptr && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
         EVP_PKEY_get_group_name(key, group, sizeof group, &length) == 1 && std::string(group) == "prime256v1";
}

bool private_key_matches(const std::string& key_pem, X509* certificate) {
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  bool matches = key != nullptr && X509_check_private_key(certificate, key) == 1;
  EVP_PKEY_free(key);
  return matches;
}

bool extension_is_critical(X509* certificate, int nid) {
  int index = X509_get_ext_by_NID(certificate, nid, -1);
  return index >= 0 && X509_EXTENSION_get_critical(X509_get_ext(certificate, index)) == 1;
}

std::vector<std::string> subject_alt_names(X509* certificate) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    auto* value = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                     static_cast<size_t>(ASN1_STRING_length(value)));
    if (type == GEN_DNS) out.push_back("DNS:" + text);
    if (type == GEN_IPADD) out.push_back("IP:" + std::to_string(text.size()) + "-byte");
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string serial_hex(X509* certificate) {
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr);
  char* hex = BN_bn2hex(serial);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(serial);
  return out;
}

TEST_CASE("certificates: a CA is self-signed, P-256, SHA-256, and marked as a CA") {
  KeyAndCertificate ca = make_ca("Acme Deployment CA");
  CHECK(ca.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));  // PKCS#8, unencrypted
  CHECK(ca.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));

  Certificate x = parse(ca.certificate_pem);
  CHECK(X509_get_version(x.get()) == X509_VERSION_3);
  CHECK(X509_NAME_cmp(X509_get_subject_name(x.get()), X509_get_issuer_name(x.get())) == 0);
  CHECK(X509_verify(x.get(), X509_get0_pubkey(x.get())) == 1);
  CHECK(X509_get_signature_nid(x.get()) == NID_ecdsa_with_SHA256);
  CHECK(public_key_is_p256(x.get()));
  CHECK(private_key_matches(ca.private_key_pem, x.get()));

  CHECK(X509_check_ca(x.get()) == 1);
  CHECK(extension_is_critical(x.get(), NID_basic_constraints));
  CHECK(extension_is_critical(x.get(), NID_key_usage));
  CHECK((X509_get_key_usage(x.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(x.get()) != nullptr);

  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "Acme Deployment CA");
}

TEST_CASE("certificates: validity starts an hour back and lasts valid_days") {
  time_t now = time(nullptr);
  KeyAndCertificate ca = make_ca("CA");
  Certificate x = parse(ca.certificate_pem);
  int days = 0;
  int seconds = 0;
  // notBefore is about an hour before now.
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(x.get()), X509_get0_notAfter(x.get())) == 1);
  CHECK(days == 30);
  CHECK(seconds >= 3600);  // the two ends are computed a moment apart
  CHECK(seconds <= 3601);
  time_t before = now - 3600 - 5;
  time_t after = now - 3600 + 5;
  CHECK(X509_cmp_time(X509_get0_notBefore(x.get()), &before) > 0);
  CHECK(X509_cmp_time(X509_get0_notBefore(x.get()), &after) < 0);
}

TEST_CASE("certificates: a server leaf carries its names, usage and the CA's key id") {
  KeyAndCertificate ca = make_ca("CA");
  KeyAndCertificate leaf = issue(ca, {.common_name = "node.example",
                                      .dns_names = {"node.example", "rendezvous.example"},
                                      .ip_addresses = {"192.0.2.7", "2001:db8::7"},
                                      .usage = CertificateRequest::Usage::server,
                                      .valid_days = 10});
  Certificate x = parse(leaf.certificate_pem);
  Certificate issuer = parse(ca.certificate_pem);

  CHECK(X509_get_version(x.get()) == X509_VERSION_3);
  CHECK(X509_verify(x.get(), X509_get0_pubkey(issuer.get())) == 1);
  CHECK(X509_check_issued(issuer.get(), x.get()) == X509_V_OK);
  CHECK(X509_get_signature_nid(x.get()) == NID_ecdsa_with_SHA256);
  CHECK(public_key_is_p256(x.get()));
  CHECK(private_key_matches(leaf.private_key_pem, x.get()));
  CHECK_FALSE(private_key_matches(ca.private_key_pem, x.get()));

  CHECK(X509_check_ca(x.get()) == 0);
  CHECK((X509_get_key_usage(x.get()) & KU_DIGITAL_SIGNATURE) != 0);
  CHECK((X509_get_key_usage(x.get()) & KU_KEY_CERT_SIGN) == 0);
  CHECK((X509_get_extended_key_usage(x.get()) & XKU_SSL_SERVER) != 0);
  CHECK((X509_get_extended_key_usage(x.get()) & XKU_SSL_CLIENT) == 0);

  const ASN1_OCTET_STRING* authority = X509_get0_authority_key_id(x.get());
  REQUIRE(authority != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(authority, X509_get0_subject_key_id(issuer.get())) == 0);

  CHECK(subject_alt_names(x.get()) ==
        std::vector<std::string>{"DNS:node.example", "DNS:rendezvous.example", "IP:4-byte", "IP:16-byte"});
  CHECK(X509_check_host(x.get(), "rendezvous.example", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(x.get(), "192.0.2.7", 0) == 1);
  CHECK(X509_check_ip_asc(x.get(), "2001:db8::7", 0) == 1);
  CHECK(X509_check_host(x.get(), "other.example", 0, 0, nullptr) == 0);
}

TEST_CASE("certificates: a client leaf is for clientAuth only") {
  KeyAndCertificate ca = make_ca("CA");
  Certificate x = parse(issue(ca, {.common_name = "agent-7", .usage = CertificateRequest::Usage::client}).certificate_pem);
  CHECK((X509_get_extended_key_usage(x.get()) & XKU_SSL_CLIENT) != 0);
  CHECK((X509_get_extended_key_usage(x.get()) & XKU_SSL_SERVER) == 0);
  CHECK(X509_get_ext_by_NID(x.get(), NID_subject_alt_name, -1) < 0);  // no names asked for, none added
}

TEST_CASE("certificates: serials are random, positive and 128 bits wide") {
  KeyAndCertificate ca = make_ca("CA");
  std::string first = serial_hex(parse(ca.certificate_pem).get());
  std::string second = serial_hex(parse(make_ca("CA").certificate_pem).get());
  std::string leaf = serial_hex(parse(issue(ca, {.common_name = "x"}).certificate_pem).get());
  CHECK(first != second);
  CHECK(first != leaf);
  for (const std::string& hex : {first, second, leaf}) {
    CAPTURE(hex);
    CHECK(hex[0] != '-');
    CHECK(hex.size() <= 32);
    CHECK(hex.size() >= 24);  // 128 random bits: fewer than 96 is a 1 in 2^32 event
  }
}

TEST_CASE("certificates: a leaf never outlives its CA") {
  KeyAndCertificate ca = make_ca("Short-lived CA");  // 30 days
  Certificate leaf = parse(issue(ca, {.common_name = "x", .valid_days = 400}).certificate_pem);
  Certificate issuer = parse(ca.certificate_pem);
  CHECK(ASN1_TIME_compare(X509_get0_notAfter(leaf.get()), X509_get0_notAfter(issuer.get())) == 0);
}

TEST_CASE("certificates: bad requests are refused with a reason") {
  KeyAndCertificate ca = make_ca("CA");
  SUBCASE("invalid IP address") {
    auto issued = issue_certificate(ca, {.common_name = "x", .ip_addresses = {"300.1.2.3"}});
    REQUIRE_FALSE(issued.has_value());
    CHECK(issued.error().detail.find("300.1.2.3") != std::string::npos);
  }
  SUBCASE("DNS name with a comma") {
    auto issued = issue_certificate(ca, {.common_name = "x", .dns_names = {"a.example,IP:1.2.3.4"}});
    REQUIRE_FALSE(issued.has_value());
  }
  SUBCASE("empty common name") {
    CHECK_FALSE(issue_certificate(ca, {.common_name = ""}).has_value());
    CHECK_FALSE(create_certificate_authority("", 10).has_value());
  }
  SUBCASE("zero or absurd validity") {
    CHECK_FALSE(issue_certificate(ca, {.common_name = "x", .valid_days = 0}).has_value());
    CHECK_FALSE(create_certificate_authority("CA", -1).has_value());
    CHECK_FALSE(create_certificate_authority("CA", 1000000).has_value());
  }
  SUBCASE("garbage CA certificate") {
    KeyAndCertificate broken = ca;
    broken.certificate_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    auto issued = issue_certificate(broken, {.common_name = "x"});
    REQUIRE_FALSE(issued.has_value());
    CHECK(issued.error().detail.starts_with("cannot parse CA certificate: "));
  }
  SUBCASE("CA key that does not belong to the CA certificate") {
    KeyAndCertificate mixed = ca;
    mixed.private_key_pem = make_ca("Other").private_key_pem;
    auto issued = issue_certificate(mixed, {.common_name = "x"});
    REQUIRE_FALSE(issued.has_value());
    CHECK(issued.error().detail.starts_with("CA private key does not match"));
  }
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certificates: certificate_facts reads back the subjectAltName names and addresses in order") {
  KeyAndCertificate ca = make_ca("facts CA");
  KeyAndCertificate leaf = issue(ca, {.common_name = "node.example.net",
                                      .dns_names = {"node.example.net", "localhost"},
                                      .ip_addresses = {"203.0.113.7", "::1"}});
  auto facts = tsunagu::security::certificate_facts(leaf.certificate_pem);
  REQUIRE(facts.has_value());
  CHECK(facts->dns_names == std::vector<std::string>{"node.example.net", "localhost"});
  CHECK(facts->ip_addresses == std::vector<std::string>{"203.0.113.7", "::1"});
  auto ca_facts = tsunagu::security::certificate_facts(ca.certificate_pem);
  REQUIRE(ca_facts.has_value());
  CHECK(ca_facts->dns_names.empty());
  CHECK(ca_facts->ip_addresses.empty());
}

}  // namespace
}  // namespace tsunagu::security
