#include "security/scram.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "security/digest.hpp"
#include "security/encoding.hpp"
#include "security/random.hpp"

namespace tsunagu::security::scram {

namespace {

constexpr std::string_view credentials_prefix = "$scram-sha256$i=";
constexpr std::string_view gs2_header = "n,,";
constexpr std::string_view channel_binding = "c=biws";  // base64("n,,")
constexpr size_t max_error_size = 64;
constexpr size_t max_iteration_digits = 8;

ByteView bytes_of(std::string_view text) { return as_bytes(text); }

bool printable_nonce_char(char c) { return c >= 0x21 && c <= 0x7E && c != ','; }

bool valid_nonce(std::string_view nonce, size_t min, size_t max) {
  if (nonce.size() < min || nonce.size() > max) return false;
  for (char c : nonce)
    if (!printable_nonce_char(c)) return false;
  return true;
}

// "a=value" with the expected letter; the value (maybe empty) or nullopt.
std::optional<std::string_view> field(std::string_view part, char letter) {
  if (part.size() < 2 || part[0] != letter || part[1] != '=') return std::nullopt;
  return part.substr(2);
}

// Splits on ','; at most `max_parts` parts or nullopt.
std::optional<std::vector<std::string_view>> split(std::string_view text, size_t max_parts) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    if (parts.size() == max_parts) return std::nullopt;
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
}

// RFC 5802 saslname: ',' as "=2C", '=' as "=3D".
std::string escape_username(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out += c;
  }
  return out;
}

std::optional<std::string> unescape_username(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '=') {
      std::string_view code = text.substr(i + 1, 2);
      if (code == "2C") out += ',';
      else if (code == "3D") out += '=';
      else return std::nullopt;
      i += 2;
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  if (out.empty() || out.size() > max_username_size) return std::nullopt;
  return out;
}

std::optional<uint32_t> parse_iterations(std::string_view digits) {
  if (digits.empty() || digits.size() > max_iteration_digits || (digits.size() > 1 && digits[0] == '0'))
    return std::nullopt;
  uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value < min_iterations || value > max_iterations) return std::nullopt;
  return value;
}

std::optional<Bytes> parse_key(std::string_view text) {
  auto key = base64_decode(text);
  if (!key || key->size() != key_size) return std::nullopt;
  return key;
}

std::optional<Bytes> parse_salt(std::string_view text) {
  auto salt = base64_decode(text);
  if (!salt || salt->size() < min_salt_size || salt->size() > max_salt_size) return std::nullopt;
  return salt;
}

bool same_secret(ByteView a, ByteView b) { return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

Bytes client_key_of(ByteView salted) { return hmac_sha256(salted, bytes_of("Client Key")); }

}  // namespace

Bytes salted_password(std::string_view password, ByteView salt, uint32_t iterations) {
  if (iterations < min_iterations || iterations > max_iterations) {
    std::fprintf(stderr, "tsunagu: SCRAM iteration count %u outside [%u, %u]\n", iterations, min_iterations,
                 max_iterations);
    std::abort();
  }
  static const char empty = '\0';
  Bytes out(key_size);
  if (PKCS5_PBKDF2_HMAC(password.empty() ? &empty : password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    std::fprintf(stderr, "tsunagu: PBKDF2 failed\n");
    std::abort();
  }
  return out;
}

ServerCredentials derive_credentials(ByteView salted, Bytes salt, uint32_t iterations) {
  ServerCredentials credentials;
  credentials.salt = std::move(salt);
  credentials.iterations = iterations;
  credentials.stored_key = sha256(client_key_of(salted));
  credentials.server_key = hmac_sha256(salted, bytes_of("Server Key"));
  return credentials;
}

ServerCredentials make_credentials(std::string_view password, uint32_t iterations) {
  Bytes salt = random_bytes(salt_size);
  Bytes salted = salted_password(password, salt, iterations);
  ServerCredentials credentials = derive_credentials(salted, std::move(salt), iterations);
  wipe(salted);
  return credentials;
}

std::string stored_credentials(std::string_view password, uint32_t iterations) {
  return encode_credentials(make_credentials(password, iterations));
}

bool password_matches(std::string_view password, const ServerCredentials& stored) {
  Bytes salted = salted_password(password, stored.salt, stored.iterations);
  Bytes stored_key = sha256(client_key_of(salted));
  wipe(salted);
  return same_secret(stored_key, stored.stored_key);
}

std::string encode_credentials(const ServerCredentials& c) {
  return std::string(credentials_prefix) + std::to_string(c.iterations) + "$" + base64_encode(c.salt) + "$" +
         base64_encode(c.stored_key) + "$" + base64_encode(c.server_key);
}

bool is_scram_credentials(std::string_view encoded) { return encoded.starts_with(credentials_prefix); }

std::optional<ServerCredentials> decode_credentials(std::string_view encoded) {
  if (encoded.size() > max_message_size || !is_scram_credentials(encoded)) return std::nullopt;
  std::string_view rest = encoded.substr(credentials_prefix.size());
  std::array<std::string_view, 4> parts;
  for (size_t i = 0; i < parts.size(); ++i) {
    size_t dollar = rest.find('$');
    if ((dollar == std::string_view::npos) != (i == parts.size() - 1)) return std::nullopt;
    parts[i] = rest.substr(0, dollar);
    if (dollar != std::string_view::npos) rest.remove_prefix(dollar + 1);
  }
  auto iterations = parse_iterations(parts[0]);
  auto salt = parse_salt(parts[1]);
  auto stored = parse_key(parts[2]);
  auto server = parse_key(parts[3]);
  if (!iterations || !salt || !stored || !server) return std::nullopt;
  return ServerCredentials{std::move(*salt), *iterations, std::move(*stored), std::move(*server)};
}

std::string build_client_first_bare(std::string_view username, std::string_view client_nonce) {
  return "n=" + escape_username(username) + ",r=" + std::string(client_nonce);
}

std::string build_client_first(std::string_view username, std::string_view client_nonce) {
  return std::string(gs2_header) + build_client_first_bare(username, client_nonce);
}

std::string build_client_final_without_proof(std::string_view nonce) {
  return std::string(channel_binding) + ",r=" + std::string(nonce);
}

std::string build_server_first(const ServerFirst& m) {
  return "r=" + m.nonce + ",s=" + base64_encode(m.salt) + ",i=" + std::to_string(m.iterations);
}

std::string build_client_final(std::string_view nonce, ByteView proof) {
  return build_client_final_without_proof(nonce) + ",p=" + base64_encode(proof);
}

std::string build_server_final(const ServerFinal& m) {
  return m.error.empty() ? "v=" + base64_encode(m.verifier) : "e=" + m.error;
}

Expected<ClientFirst, ParseError> parse_client_first(std::string_view text) {
  if (text.size() > max_message_size) return Unexpected(ParseError{"client-first too long"});
  if (!text.starts_with(gs2_header))
    return Unexpected(ParseError{"client-first: only GS2 header \"n,,\" (no channel binding, no authzid)"});
  std::string_view bare = text.substr(gs2_header.size());
  auto parts = split(bare, 2);
  if (!parts || parts->size() != 2) return Unexpected(ParseError{"client-first: expected n=...,r=..."});
  auto name = field((*parts)[0], 'n');
  auto nonce = field((*parts)[1], 'r');
  if (!name || !nonce) return Unexpected(ParseError{"client-first: expected n=...,r=..."});
  auto username = unescape_username(*name);
  if (!username) return Unexpected(ParseError{"client-first: bad username"});
  if (!valid_nonce(*nonce, min_nonce_size, max_nonce_size)) return Unexpected(ParseError{"client-first: bad nonce"});
  return ClientFirst{std::move(*username), std::string(*nonce), std::string(bare)};
}

Expected<ServerFirst, ParseError> parse_server_first(std::string_view text) {
  if (text.size() > max_message_size) return Unexpected(ParseError{"server-first too long"});
  auto parts = split(text, 3);
  if (!parts || parts->size() != 3) return Unexpected(ParseError{"server-first: expected r=...,s=...,i=..."});
  auto nonce = field((*parts)[0], 'r');
  auto salt_text = field((*parts)[1], 's');
  auto iterations_text = field((*parts)[2], 'i');
  if (!nonce || !salt_text || !iterations_text)
    return Unexpected(ParseError{"server-first: expected r=...,s=...,i=..."});
  if (!valid_nonce(*nonce, 2 * min_nonce_size, 2 * max_nonce_size))
    return Unexpected(ParseError{"server-first: bad nonce"});
  auto salt = parse_salt(*salt_text);
  if (!salt) return Unexpected(ParseError{"server-first: bad salt"});
  auto iterations = parse_iterations(*iterations_text);
  if (!iterations) return Unexpected(ParseError{"server-first: iteration count missing or out of bounds"});
  return ServerFirst{std::string(*nonce), std::move(*salt), *iterations};
}

Expected<ClientFinal, ParseError> parse_client_final(std::string_view text) {
  if (text.size() > max_message_size) return Unexpected(ParseError{"client-final too long"});
  auto parts = split(text, 3);
  if (!parts || parts->size() != 3) return Unexpected(ParseError{"client-final: expected c=biws,r=...,p=..."});
  if ((*parts)[0] != channel_binding) return Unexpected(ParseError{"client-final: channel binding must be c=biws"});
  auto nonce = field((*parts)[1], 'r');
  auto proof_text = field((*parts)[2], 'p');
  if (!nonce || !proof_text) return Unexpected(ParseError{"client-final: expected c=biws,r=...,p=..."});
  if (!valid_nonce(*nonce, 2 * min_nonce_size, 2 * max_nonce_size))
    return Unexpected(ParseError{"client-final: bad nonce"});
  auto proof = parse_key(*proof_text);
  if (!proof) return Unexpected(ParseError{"client-final: proof is not 32 bytes of base64"});
  size_t without = text.size() - (*parts)[2].size() - 1;
  return ClientFinal{std::string(*nonce), std::move(*proof), std::string(text.substr(0, without))};
}

Expected<ServerFinal, ParseError> parse_server_final(std::string_view text) {
  if (text.size() > max_message_size) return Unexpected(ParseError{"server-final too long"});
  if (auto verifier = field(text, 'v')) {
    auto key = parse_key(*verifier);
    if (!key) return Unexpected(ParseError{"server-final: verifier is not 32 bytes of base64"});
    return ServerFinal{std::move(*key), {}};
  }
  if (auto error = field(text, 'e')) {
    if (error->empty() || error->size() > max_error_size || !valid_nonce(*error, 1, max_error_size))
      return Unexpected(ParseError{"server-final: bad error value"});
    return ServerFinal{{}, std::string(*error)};
  }
  return Unexpected(ParseError{"server-final: expected v=... or e=..."});
}

std::string make_nonce(size_t random_size) { return base64_encode(random_bytes(random_size)); }

std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof) {
  std::string out;
  out.reserve(client_first_bare.size() + server_first.size() + client_final_without_proof.size() + 2);
  out += client_first_bare;
  out += ',';
  out += server_first;
  out += ',';
  out += client_final_without_proof;
  return out;
}

Bytes client_proof(ByteView salted, std::string_view auth) {
  Bytes client_key = client_key_of(salted);
  Bytes signature = hmac_sha256(sha256(client_key), bytes_of(auth));
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= signature[i];
  return client_key;
}

bool verify_client_proof(ByteView stored_key, std::string_view auth, ByteView proof) {
  if (stored_key.size() != key_size || proof.size() != key_size) return false;
  Bytes client_key = hmac_sha256(stored_key, bytes_of(auth));
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= proof[i];
  bool ok = same_secret(sha256(client_key), stored_key);
  wipe(client_key);
  return ok;
}

Bytes server_signature(ByteView server_key, std::string_view auth) { return hmac_sha256(server_key, bytes_of(auth)); }

bool verify_server_signature(ByteView salted, std::string_view auth, ByteView signature) {
  Bytes server_key = hmac_sha256(salted, bytes_of("Server Key"));
  bool ok = same_secret(server_signature(server_key, auth), signature);
  wipe(server_key);
  return ok;
}

}  // namespace tsunagu::security::scram
