#include "terminal/packet_protection.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>

namespace tsunagu::terminal {

// ChaCha20-Poly1305 rather than AES-256-GCM: it is constant-time in software,
// so terminals on CPUs without AES-NI/PMULL (small ARM boards, old x86) are
// neither slow nor exposed to cache-timing leaks of table-based AES; with
// AES-NI both are fast and both are fine.

namespace {

constexpr size_t hkdf_output_size = 32 + 4;
constexpr size_t nonce_size = 12;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tsunagu: packet protection: %s\n", what);
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    std::fprintf(stderr, "  %s\n", text);
  }
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

const unsigned char* uchars(const std::byte* p) { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* uchars(std::byte* p) { return reinterpret_cast<unsigned char*>(p); }

bool overlap(ByteView a, std::span<const std::byte> b) {
  if (a.empty() || b.empty()) return false;
  std::less<const std::byte*> before;
  return before(a.data(), b.data() + b.size()) && before(b.data(), a.data() + a.size());
}

int int_size(size_t size) {
  require(size <= static_cast<size_t>(INT_MAX), "length out of range");
  return static_cast<int>(size);
}

// Owns the derived keys of a constructor and wipes them when it returns.
struct WipedKeys {
  DirectionKeys keys;
  WipedKeys(const CallKeyMaterial& material, Direction direction) : keys(derive_direction_keys(material, direction)) {}
  WipedKeys(const WipedKeys&) = delete;
  WipedKeys& operator=(const WipedKeys&) = delete;
  ~WipedKeys() { OPENSSL_cleanse(&keys, sizeof keys); }
};

std::unique_ptr<evp_cipher_ctx_st, CipherContextFree> new_context(const DirectionKeys& keys, bool encrypt) {
  std::unique_ptr<evp_cipher_ctx_st, CipherContextFree> context(EVP_CIPHER_CTX_new());
  require(context != nullptr, "EVP_CIPHER_CTX_new failed (out of memory?)");
  // The key is set once; each packet sets only its nonce.
  int ok = encrypt ? EVP_EncryptInit_ex2(context.get(), EVP_chacha20_poly1305(), uchars(keys.key.data()), nullptr, nullptr)
                   : EVP_DecryptInit_ex2(context.get(), EVP_chacha20_poly1305(), uchars(keys.key.data()), nullptr, nullptr);
  require(ok == 1, "cannot set up ChaCha20-Poly1305");
  require(EVP_CIPHER_CTX_get_iv_length(context.get()) == static_cast<int>(nonce_size), "unexpected nonce length");
  return context;
}

// Feeds the associated data (header || call ID) to a context that has its nonce.
void add_associated_data(evp_cipher_ctx_st* context, ByteView header, std::string_view call_id, bool encrypt) {
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  int written = 0;
  require(update(context, nullptr, &written, uchars(header.data()), int_size(header.size())) == 1,
          "associated data rejected");
  if (!call_id.empty()) {
    ByteView id = as_bytes(call_id);
    require(update(context, nullptr, &written, uchars(id.data()), int_size(id.size())) == 1,
            "associated data rejected");
  }
}

}  // namespace

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::caller_to_callee: return "caller_to_callee";
    case Direction::callee_to_caller: return "callee_to_caller";
  }
  return "unknown";
}

std::string_view to_string(OpenError error) {
  switch (error) {
    case OpenError::too_short: return "too_short";
    case OpenError::too_large: return "too_large";
    case OpenError::bad_version: return "bad_version";
    case OpenError::wrong_direction: return "wrong_direction";
    case OpenError::replayed: return "replayed";
    case OpenError::too_old: return "too_old";
    case OpenError::authentication_failed: return "authentication_failed";
  }
  return "unknown";
}

void CipherContextFree::operator()(evp_cipher_ctx_st* context) const { EVP_CIPHER_CTX_free(context); }

DirectionKeys derive_direction_keys(const CallKeyMaterial& material, Direction direction) {
  require(direction == Direction::caller_to_callee || direction == Direction::callee_to_caller, "invalid direction");
  std::string info = "tsunagu v1 ";
  info += to_string(direction);

  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), &EVP_KDF_free);
  require(kdf != nullptr, "HKDF not available");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> context(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
  require(context != nullptr, "EVP_KDF_CTX_new failed (out of memory?)");

  char digest[] = "SHA256";
  std::array<std::byte, 32> secret = material.secret;  // OSSL_PARAM wants non-const pointers
  std::string salt = material.call_id;
  OSSL_PARAM params[5];
  size_t count = 0;
  params[count++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret.data(), secret.size());
  // An empty call ID leaves the salt out: HKDF then uses zeros (RFC 5869).
  if (!salt.empty()) params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(), salt.size());
  params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size());
  params[count] = OSSL_PARAM_construct_end();

  std::array<std::byte, hkdf_output_size> output{};
  int ok = EVP_KDF_derive(context.get(), uchars(output.data()), output.size(), params);
  OPENSSL_cleanse(secret.data(), secret.size());
  require(ok == 1, "HKDF-SHA256 failed");

  DirectionKeys keys{};
  std::copy_n(output.begin(), keys.key.size(), keys.key.begin());
  std::copy_n(output.begin() + keys.key.size(), keys.nonce_salt.size(), keys.nonce_salt.begin());
  OPENSSL_cleanse(output.data(), output.size());
  // The direction owns the top bit of the nonce: the two directions can never
  // produce the same nonce, whatever HKDF returned.
  keys.nonce_salt[0] &= std::byte{0x7f};
  if (direction == Direction::callee_to_caller) keys.nonce_salt[0] |= std::byte{0x80};
  return keys;
}

std::array<std::byte, 12> packet_nonce(const DirectionKeys& keys, uint64_t sequence) {
  std::array<std::byte, nonce_size> nonce{};
  std::copy(keys.nonce_salt.begin(), keys.nonce_salt.end(), nonce.begin());
  store_be64(nonce.data() + keys.nonce_salt.size(), sequence);
  return nonce;
}

// ---- PacketSealer ----

PacketSealer::PacketSealer(const CallKeyMaterial& material, Direction outgoing) : PacketSealer(material, outgoing, 0) {}

PacketSealer::PacketSealer(const CallKeyMaterial& material, Direction outgoing, uint64_t first_sequence)
    : call_id_(material.call_id), direction_(outgoing), first_sequence_(first_sequence), next_sequence_(first_sequence) {
  WipedKeys derived(material, outgoing);
  context_ = new_context(derived.keys, true);
  nonce_salt_ = derived.keys.nonce_salt;
}

PacketSealer PacketSealer::starting_at_for_testing(const CallKeyMaterial& material, Direction outgoing,
                                                   uint64_t first_sequence) {
  return PacketSealer(material, outgoing, first_sequence);
}

PacketSealer::PacketSealer(PacketSealer&&) noexcept = default;
PacketSealer& PacketSealer::operator=(PacketSealer&&) noexcept = default;
PacketSealer::~PacketSealer() = default;

size_t PacketSealer::seal_into(ByteView plaintext, std::span<std::byte> out) {
  require(plaintext.size() <= max_packet_plaintext, "seal: plaintext over max_packet_plaintext");
  const size_t total = sealed_size(plaintext.size());
  require(out.size() >= total, "seal: output buffer too small");
  require(!overlap(plaintext, out.first(total)), "seal: output overlaps plaintext");
  // Checked before anything is written: a nonce is never used twice.
  require(next_sequence_ <= last_sequence, "seal: sequence numbers exhausted, refusing to reuse a nonce");
  const uint64_t sequence = next_sequence_++;

  out[0] = std::byte{packet_version};
  out[1] = std::byte{static_cast<uint8_t>(direction_)};
  store_be64(out.data() + 2, sequence);

  std::array<std::byte, nonce_size> nonce{};
  std::copy(nonce_salt_.begin(), nonce_salt_.end(), nonce.begin());
  store_be64(nonce.data() + nonce_salt_.size(), sequence);

  evp_cipher_ctx_st* context = context_.get();
  require(EVP_EncryptInit_ex2(context, nullptr, nullptr, uchars(nonce.data()), nullptr) == 1, "seal: cannot set nonce");
  add_associated_data(context, out.first(packet_header_size), call_id_, true);
  std::byte* ciphertext = out.data() + packet_header_size;
  int written = 0;
  if (!plaintext.empty()) {
    require(EVP_EncryptUpdate(context, uchars(ciphertext), &written, uchars(plaintext.data()),
                              int_size(plaintext.size())) == 1 &&
                static_cast<size_t>(written) == plaintext.size(),
            "seal: encryption failed");
  }
  int final_written = 0;
  require(EVP_EncryptFinal_ex(context, uchars(ciphertext + plaintext.size()), &final_written) == 1 &&
              final_written == 0,
          "seal: encryption failed");
  require(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(packet_tag_size),
                              ciphertext + plaintext.size()) == 1,
          "seal: cannot read the tag");
  return total;
}

Bytes PacketSealer::seal(ByteView plaintext) {
  require(plaintext.size() <= max_packet_plaintext, "seal: plaintext over max_packet_plaintext");
  Bytes packet(sealed_size(plaintext.size()));
  seal_into(plaintext, packet);
  return packet;
}

// ---- PacketOpener ----

PacketOpener::PacketOpener(const CallKeyMaterial& material, Direction incoming)
    : call_id_(material.call_id), direction_(incoming) {
  WipedKeys derived(material, incoming);
  context_ = new_context(derived.keys, false);
  nonce_salt_ = derived.keys.nonce_salt;
}

PacketOpener::PacketOpener(PacketOpener&&) noexcept = default;
PacketOpener& PacketOpener::operator=(PacketOpener&&) noexcept = default;
PacketOpener::~PacketOpener() = default;

uint64_t PacketOpener::packets_rejected() const {
  uint64_t total = 0;
  for (uint64_t count : rejected_) total += count;
  return total;
}

OpenError PacketOpener::reject(OpenError error) {
  ++rejected_[static_cast<size_t>(error)];
  return error;
}

Expected<uint64_t, OpenError> PacketOpener::check_header(ByteView packet) const {
  if (packet.size() < packet_overhead) return Unexpected(OpenError::too_short);
  if (packet.size() > max_sealed_packet_size) return Unexpected(OpenError::too_large);
  if (packet[0] != std::byte{packet_version}) return Unexpected(OpenError::bad_version);
  if (packet[1] != std::byte{static_cast<uint8_t>(direction_)}) return Unexpected(OpenError::wrong_direction);
  const uint64_t sequence = load_be64(packet.data() + 2);
  // Cheap refusals before any cryptography; they do not change the window.
  switch (window_.classify(sequence)) {
    case ReplayCheck::fresh: break;
    case ReplayCheck::replayed: return Unexpected(OpenError::replayed);
    case ReplayCheck::too_old: return Unexpected(OpenError::too_old);
  }
  return sequence;
}

Expected<size_t, OpenError> PacketOpener::open_into(ByteView packet, std::span<std::byte> out) {
  auto checked = check_header(packet);
  if (!checked) return Unexpected(reject(checked.error()));
  const uint64_t sequence = *checked;
  const size_t plaintext_size = packet.size() - packet_overhead;
  require(out.size() >= plaintext_size, "open: output buffer too small");
  require(!overlap(packet, out.first(plaintext_size)), "open: output overlaps packet");

  std::array<std::byte, nonce_size> nonce{};
  std::copy(nonce_salt_.begin(), nonce_salt_.end(), nonce.begin());
  store_be64(nonce.data() + nonce_salt_.size(), sequence);
  std::array<std::byte, packet_tag_size> tag{};
  std::copy_n(packet.end() - static_cast<std::ptrdiff_t>(packet_tag_size), packet_tag_size, tag.begin());

  evp_cipher_ctx_st* context = context_.get();
  require(EVP_DecryptInit_ex2(context, nullptr, nullptr, uchars(nonce.data()), nullptr) == 1, "open: cannot set nonce");
  add_associated_data(context, packet.first(packet_header_size), call_id_, false);
  int written = 0;
  if (plaintext_size > 0) {
    require(EVP_DecryptUpdate(context, uchars(out.data()), &written, uchars(packet.data() + packet_header_size),
                              int_size(plaintext_size)) == 1 &&
                static_cast<size_t>(written) == plaintext_size,
            "open: decryption failed");
  }
  require(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(packet_tag_size), tag.data()) == 1,
          "open: cannot set the tag");
  int final_written = 0;
  if (EVP_DecryptFinal_ex(context, uchars(out.data() + plaintext_size), &final_written) != 1) {
    // Forged or corrupted: wipe what was decrypted and leave the window alone.
    if (plaintext_size > 0) OPENSSL_cleanse(out.data(), plaintext_size);
    ERR_clear_error();
    return Unexpected(reject(OpenError::authentication_failed));
  }
  window_.accept(sequence);
  ++opened_;
  return plaintext_size;
}

Expected<Bytes, OpenError> PacketOpener::open(ByteView packet) {
  // Allocate only for packets whose size is plausible.
  const bool plausible = packet.size() >= packet_overhead && packet.size() <= max_sealed_packet_size;
  Bytes plaintext(plausible ? packet.size() - packet_overhead : 0);
  auto opened = open_into(packet, plaintext);
  if (!opened) return Unexpected(opened.error());
  return plaintext;
}

}  // namespace tsunagu::terminal
