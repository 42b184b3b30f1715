#include "security/certificates.hpp"

#include <arpa/inet.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <iterator>
#include <optional>
#include <string>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace {

using detail::Owned;
using PrivateKey = Owned<EVP_PKEY, EVP_PKEY_free>;
using Certificate = Owned<X509, X509_free>;

constexpr int max_valid_days = 36525;  // a century; anything above is a typo
constexpr long seconds_per_day = 86400;

Unexpected<TlsError> failure(std::string_view what) {
  std::string detail(what);
  detail += ": ";
  detail += detail::take_openssl_errors();
  return Unexpected(TlsError{std::move(detail)});
}

}  // namespace

std::optional<std::string> detail::serial_hex(const asn1_string_st* serial) {
  Owned<BIGNUM, BN_free> number(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!number) return std::nullopt;
  char* hex = BN_bn2hex(number.get());
  if (hex == nullptr) return std::nullopt;
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

namespace {

Unexpected<TlsError> plain_failure(std::string detail) {
  detail::discard_openssl_errors();
  return Unexpected(TlsError{std::move(detail)});
}

Expected<PrivateKey, TlsError> generate_p256_key() {
  Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx) return failure("cannot create EC key generator");
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1 ||
      EVP_PKEY_generate(ctx.get(), &key) != 1) {
    return failure("cannot generate P-256 key");
  }
  return PrivateKey(key);
}

// 128 random bits, positive (BN_bin2bn reads unsigned), never zero.
bool set_random_serial(X509* certificate) {
  unsigned char bytes[16];
  do {
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  } while (std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char b) { return b == 0; }));
  Owned<BIGNUM, BN_free> serial(BN_bin2bn(bytes, sizeof bytes, nullptr));
  return serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate)) != nullptr;
}

bool set_common_name(X509_NAME* name, std::string_view common_name) {
  if (common_name.size() > INT_MAX) return false;
  return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(common_name.data()),
                                    static_cast<int>(common_name.size()), -1, 0) == 1;
}

// Adds an extension written in openssl.cnf syntax (only fixed strings from this file).
bool add_extension(X509* certificate, X509V3_CTX* ctx, int nid, const char* value) {
  Owned<X509_EXTENSION, X509_EXTENSION_free> extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  return extension && X509_add_ext(certificate, extension.get(), -1) == 1;
}

// A new v3 certificate with serial, validity, subject and public key set.
Expected<Certificate, TlsError> new_certificate(std::string_view common_name, int valid_days, EVP_PKEY* key) {
  if (valid_days <= 0 || valid_days > max_valid_days) {
    return plain_failure("valid_days must be between 1 and " + std::to_string(max_valid_days));
  }
  Certificate certificate(X509_new());
  if (!certificate) return failure("cannot allocate certificate");
  X509* x = certificate.get();
  if (X509_set_version(x, X509_VERSION_3) != 1 || !set_random_serial(x)) return failure("cannot set serial number");
  // Backdated an hour so a peer whose clock runs a little behind accepts it.
  if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(valid_days) * seconds_per_day) == nullptr) {
    return failure("cannot set validity");
  }
  if (!set_common_name(X509_get_subject_name(x), common_name)) {
    return failure("invalid common name \"" + std::string(common_name) + "\"");
  }
  if (X509_set_pubkey(x, key) != 1) return failure("cannot set public key");
  return certificate;
}

Expected<KeyAndCertificate, TlsError> sign_and_encode(X509* certificate, EVP_PKEY* signing_key,
                                                      EVP_PKEY* subject_key) {
  if (X509_sign(certificate, signing_key, EVP_sha256()) <= 0) return failure("cannot sign certificate");

  auto drain = [](BIO* bio) {
    std::string text(BIO_ctrl_pending(bio), '\0');
    int got = BIO_read(bio, text.data(), static_cast<int>(text.size()));
    text.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return text;
  };
  KeyAndCertificate result;
  Owned<BIO, BIO_free_all> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1) return failure("cannot encode certificate");
  result.certificate_pem = drain(bio.get());
  // Unencrypted PKCS#8 ("BEGIN PRIVATE KEY"); the file's permissions protect it.
  if (PEM_write_bio_PrivateKey(bio.get(), subject_key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return failure("cannot encode private key");
  }
  result.private_key_pem = drain(bio.get());
  return result;
}

Expected<Certificate, TlsError> parse_certificate(const std::string& pem) {
  if (pem.size() > INT_MAX) return plain_failure("CA certificate too large");
  Owned<BIO, BIO_free_all> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return failure("cannot read CA certificate");
  Certificate certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) return failure("cannot parse CA certificate");
  return certificate;
}

Expected<PrivateKey, TlsError> parse_private_key(const std::string& pem) {
  if (pem.size() > INT_MAX) return plain_failure("CA private key too large");
  Owned<BIO, BIO_free_all> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return failure("cannot read CA private key");
  // No password callback: an encrypted key fails instead of prompting on a terminal.
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
  if (!key) return failure("cannot parse CA private key");
  return key;
}

bool plausible_dns_name(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '*' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Expected<void, TlsError> add_subject_alt_names(X509* certificate, const CertificateRequest& request) {
  if (request.dns_names.empty() && request.ip_addresses.empty()) return {};
  Owned<GENERAL_NAMES, GENERAL_NAMES_free> names(GENERAL_NAMES_new());
  if (!names) return failure("cannot allocate subjectAltName");
  for (const std::string& dns : request.dns_names) {
    if (!plausible_dns_name(dns)) return plain_failure("invalid DNS name \"" + dns + "\" for subjectAltName");
    Owned<ASN1_IA5STRING, ASN1_IA5STRING_free> text(ASN1_IA5STRING_new());
    if (!text || ASN1_STRING_set(text.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      return failure("cannot encode DNS name");
    }
    Owned<GENERAL_NAME, GENERAL_NAME_free> entry(GENERAL_NAME_new());
    if (!entry) return failure("cannot allocate subjectAltName entry");
    GENERAL_NAME_set0_value(entry.get(), GEN_DNS, text.release());
    if (sk_GENERAL_NAME_push(names.get(), entry.get()) <= 0) return failure("cannot add DNS name");
    entry.release();
  }
  for (const std::string& ip : request.ip_addresses) {
    Owned<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free> address(a2i_IPADDRESS(ip.c_str()));
    if (!address || ip.find('\0') != std::string::npos) {
      return plain_failure("invalid IP address \"" + ip + "\" for subjectAltName");
    }
    Owned<GENERAL_NAME, GENERAL_NAME_free> entry(GENERAL_NAME_new());
    if (!entry) return failure("cannot allocate subjectAltName entry");
    GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, address.release());
    if (sk_GENERAL_NAME_push(names.get(), entry.get()) <= 0) return failure("cannot add IP address");
    entry.release();
  }
  if (X509_add1_ext_i2d(certificate, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return failure("cannot add subjectAltName");
  }
  return {};
}

}  // namespace

Expected<KeyAndCertificate, TlsError> create_certificate_authority(std::string_view common_name, int valid_days) {
  detail::discard_openssl_errors();
  auto key = generate_p256_key();
  if (!key) return Unexpected(key.error());
  auto created = new_certificate(common_name, valid_days, key->get());
  if (!created) return Unexpected(created.error());
  X509* x = created->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) return failure("cannot set issuer");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  if (!add_extension(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
      !add_extension(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_extension(x, &ctx, NID_subject_key_identifier, "hash")) {
    return failure("cannot add CA extensions");
  }
  return sign_and_encode(x, key->get(), key->get());
}

Expected<KeyAndCertificate, TlsError> issue_certificate(const KeyAndCertificate& ca, const CertificateRequest& request) {
  detail::discard_openssl_errors();
  auto ca_certificate = parse_certificate(ca.certificate_pem);
  if (!ca_certificate) return Unexpected(ca_certificate.error());
  auto ca_key = parse_private_key(ca.private_key_pem);
  if (!ca_key) return Unexpected(ca_key.error());
  if (X509_check_private_key(ca_certificate->get(), ca_key->get()) != 1) {
    return failure("CA private key does not match the CA certificate");
  }

  auto key = generate_p256_key();
  if (!key) return Unexpected(key.error());
  auto created = new_certificate(request.common_name, request.valid_days, key->get());
  if (!created) return Unexpected(created.error());
  X509* x = created->get();
  X509* issuer = ca_certificate->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1) return failure("cannot set issuer");
  // A leaf never outlives its CA: verification would fail past the CA's notAfter anyway.
  if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
      X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1) {
    return failure("cannot set validity");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  const char* extended_usage = request.usage == CertificateRequest::Usage::server ? "serverAuth" : "clientAuth";
  if (!add_extension(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
      !add_extension(x, &ctx, NID_ext_key_usage, extended_usage) ||
      !add_extension(x, &ctx, NID_subject_key_identifier, "hash") ||
      !add_extension(x, &ctx, NID_authority_key_identifier, "keyid:always")) {
    return failure("cannot add certificate extensions");
  }
  if (auto added = add_subject_alt_names(x, request); !added) return Unexpected(added.error());
  return sign_and_encode(x, ca_key->get(), key->get());
}

}  // namespace tsunagu::security

namespace tsunagu::security {

Expected<std::string, TlsError> certificate_common_name(const std::string& certificate_pem) {
  auto certificate = parse_certificate(certificate_pem);
  if (!certificate) return Unexpected(certificate.error());
  X509_NAME* subject = X509_get_subject_name(certificate->get());
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return plain_failure("the certificate has no common name");
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  if (length < 0) return failure("common name");
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

Expected<CertificateFacts, TlsError> certificate_facts(const std::string& certificate_pem) {
  auto certificate = parse_certificate(certificate_pem);
  if (!certificate) return Unexpected(certificate.error());
  CertificateFacts facts;
  auto serial = detail::serial_hex(X509_get0_serialNumber(certificate->get()));
  if (!serial) return failure("serial number");
  facts.serial_hex = std::move(*serial);
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate->get()), &tm) != 1) return failure("notAfter");
  facts.not_after = static_cast<int64_t>(timegm(&tm));
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate->get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      facts.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                   static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      int length = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = {};
      if ((length == 4 || length == 16) &&
          inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr)
        facts.ip_addresses.emplace_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  return facts;
}

}  // namespace tsunagu::security
