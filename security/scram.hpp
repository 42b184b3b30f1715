// SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash) for logins: the terminal
// derives SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations) once,
// and each login then costs both sides a few HMACs. The node keeps only
// StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
// ServerKey = HMAC(SaltedPassword, "Server Key"), which let it check a proof
// and prove itself, but not log in as the user.
//
// Only what Tsunagu uses: no channel binding (the login runs inside TLS;
// GS2 header "n,,"), no authzid, no extensions. The message parsers take
// bytes from the network: each is size-limited and rejects anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::security::scram {

// Production iteration count for new credentials (OWASP's figure for
// PBKDF2-HMAC-SHA256). Tests may lower it for their accounts, never below
// min_iterations, the floor RFC 7677 sets.
inline constexpr uint32_t default_iterations = 600'000;
inline constexpr uint32_t min_iterations = 4096;
// A node (or a tampered store) cannot make a terminal spin for hours.
inline constexpr uint32_t max_iterations = 10'000'000;
inline constexpr size_t key_size = 32;   // SHA-256
inline constexpr size_t salt_size = 16;  // what make_credentials draws
inline constexpr size_t min_salt_size = 8, max_salt_size = 64;
inline constexpr size_t min_nonce_size = 16, max_nonce_size = 128;  // each side's part
inline constexpr size_t max_username_size = 128;
inline constexpr size_t max_message_size = 512;  // any of the four messages

struct ParseError {
  std::string_view detail;  // static text for logs
};

// --- Key derivation ---

// PBKDF2-HMAC-SHA256; the slow step. Iterations outside
// [min_iterations, max_iterations] are a bug here and abort.
Bytes salted_password(std::string_view password, ByteView salt, uint32_t iterations);

struct ServerCredentials {
  Bytes salt;
  uint32_t iterations = default_iterations;
  Bytes stored_key;  // key_size
  Bytes server_key;  // key_size
  friend bool operator==(const ServerCredentials&, const ServerCredentials&) = default;
};

ServerCredentials derive_credentials(ByteView salted, Bytes salt, uint32_t iterations);
// A fresh random salt, then salted_password and derive_credentials.
ServerCredentials make_credentials(std::string_view password, uint32_t iterations = default_iterations);
// make_credentials in its stored form (encode_credentials): what an account keeps.
std::string stored_credentials(std::string_view password, uint32_t iterations = default_iterations);
// Constant-time: does `password` derive `stored`'s StoredKey? (A password
// login, which costs the full PBKDF2.)
bool password_matches(std::string_view password, const ServerCredentials& stored);

// Stored form, beside security::hash_password's "$scrypt$...":
//   $scram-sha256$i=<iterations>$<salt b64>$<StoredKey b64>$<ServerKey b64>
std::string encode_credentials(const ServerCredentials& credentials);
// nullopt for anything else (a scrypt hash included), or out-of-limit values.
std::optional<ServerCredentials> decode_credentials(std::string_view encoded);
bool is_scram_credentials(std::string_view encoded);

// --- Messages ---

struct ClientFirst {
  std::string username;  // unescaped
  std::string nonce;
  std::string bare;  // the message without its GS2 header, as AuthMessage needs it
};
struct ServerFirst {
  std::string nonce;  // client nonce + server nonce
  Bytes salt;
  uint32_t iterations = 0;
};
struct ClientFinal {
  std::string nonce;
  Bytes proof;
  std::string without_proof;  // "c=biws,r=...", as AuthMessage needs it
};
// v=<ServerSignature> on success, e=<error> on failure.
struct ServerFinal {
  Bytes verifier;
  std::string error;
};

std::string build_client_first(std::string_view username, std::string_view client_nonce);
std::string build_server_first(const ServerFirst& message);
std::string build_client_final(std::string_view nonce, ByteView proof);
// The parts AuthMessage takes from the client's messages.
std::string build_client_first_bare(std::string_view username, std::string_view client_nonce);
std::string build_client_final_without_proof(std::string_view nonce);
std::string build_server_final(const ServerFinal& message);

Expected<ClientFirst, ParseError> parse_client_first(std::string_view text);
Expected<ServerFirst, ParseError> parse_server_first(std::string_view text);
Expected<ClientFinal, ParseError> parse_client_final(std::string_view text);
Expected<ServerFinal, ParseError> parse_server_final(std::string_view text);

// A printable nonce (base64 of `random_size` random bytes).
std::string make_nonce(size_t random_size = 18);

// AuthMessage = client-first-bare "," server-first "," client-final-without-proof
std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof);

// --- Proofs ---

// The client's proof: ClientKey XOR HMAC(StoredKey, AuthMessage).
Bytes client_proof(ByteView salted, std::string_view auth);
// Constant-time: H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey.
bool verify_client_proof(ByteView stored_key, std::string_view auth, ByteView proof);
// HMAC(ServerKey, AuthMessage).
Bytes server_signature(ByteView server_key, std::string_view auth);
// The client's check of the node (constant-time), from SaltedPassword.
bool verify_server_signature(ByteView salted, std::string_view auth, ByteView signature);

}  // namespace tsunagu::security::scram
