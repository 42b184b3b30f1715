#include "security/aead.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string_view>

#include "tests/unit/proto/test_bytes.hpp"

namespace tsunagu::security {
namespace {

using proto::test::hex;
using Mode = ChaCha20Poly1305::Mode;

// Also used by the constants below, before doctest runs: a wrong length aborts.
template <size_t N>
std::array<std::byte, N> array_of(const Bytes& bytes) {
  if (bytes.size() != N) std::abort();
  std::array<std::byte, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

// RFC 8439 section 2.8.2.
const AeadKey rfc_key = array_of<aead_key_size>(hex(
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
const AeadNonce rfc_nonce = array_of<aead_nonce_size>(hex("070000004041424344454647"));
const Bytes rfc_associated = hex("50515253c0c1c2c3c4c5c6c7");
constexpr std::string_view rfc_plaintext =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be "
    "it.";
const Bytes rfc_ciphertext = hex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116");
const Bytes rfc_tag = hex("1ae10b594f09e26a7e902ecbd0600691");

struct Sealed {
  Bytes ciphertext;
  std::array<std::byte, aead_tag_size> tag;
};

Sealed seal(const AeadKey& key, const AeadNonce& nonce, std::initializer_list<ByteView> associated,
            ByteView plaintext) {
  ChaCha20Poly1305 sealer(key, Mode::seal);
  Sealed out{Bytes(plaintext.size()), {}};
  sealer.seal(nonce, associated, plaintext, out.ciphertext, out.tag);
  return out;
}

}  // namespace

TEST_CASE("aead: sealing the RFC 8439 section 2.8.2 example gives its ciphertext and tag") {
  Sealed sealed = seal(rfc_key, rfc_nonce, {rfc_associated}, as_bytes(rfc_plaintext));
  CHECK(sealed.ciphertext == rfc_ciphertext);
  CHECK(Bytes(sealed.tag.begin(), sealed.tag.end()) == rfc_tag);
}

TEST_CASE("aead: associated data given in parts is the same as given whole") {
  ByteView whole = rfc_associated;
  Sealed sealed = seal(rfc_key, rfc_nonce, {whole.first(5), {}, whole.subspan(5)}, as_bytes(rfc_plaintext));
  CHECK(sealed.ciphertext == rfc_ciphertext);
  CHECK(Bytes(sealed.tag.begin(), sealed.tag.end()) == rfc_tag);
}

TEST_CASE("aead: opening the RFC 8439 example gives back the plaintext") {
  ChaCha20Poly1305 opener(rfc_key, Mode::open);
  Bytes plaintext(rfc_ciphertext.size());
  REQUIRE(opener.open(rfc_nonce, {rfc_associated}, rfc_ciphertext, array_of<aead_tag_size>(rfc_tag), plaintext));
  CHECK(as_chars(plaintext) == rfc_plaintext);
}

TEST_CASE("aead: one opener opens many messages under their own nonces, including empty ones") {
  ChaCha20Poly1305 sealer(rfc_key, Mode::seal);
  ChaCha20Poly1305 opener(rfc_key, Mode::open);
  for (size_t size : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{4096}}) {
    AeadNonce nonce{};
    nonce[11] = std::byte(size & 0xff);
    nonce[10] = std::byte(size >> 8);
    Bytes plaintext(size, std::byte{0x5a});
    Bytes ciphertext(size);
    std::array<std::byte, aead_tag_size> tag{};
    sealer.seal(nonce, {as_bytes("header")}, plaintext, ciphertext, tag);
    Bytes opened(size, std::byte{0xff});
    CHECK(opener.open(nonce, {as_bytes("header")}, ciphertext, tag, opened));
    CHECK(opened == plaintext);
  }
}

TEST_CASE("aead: every single-bit flip of ciphertext or tag fails and leaves only zeros") {
  ChaCha20Poly1305 opener(rfc_key, Mode::open);
  const auto tag = array_of<aead_tag_size>(rfc_tag);
  for (size_t bit = 0; bit < rfc_ciphertext.size() * 8; ++bit) {
    Bytes tampered = rfc_ciphertext;
    tampered[bit / 8] ^= std::byte(1u << (bit % 8));
    Bytes plaintext(tampered.size(), std::byte{0xff});
    CHECK_FALSE(opener.open(rfc_nonce, {rfc_associated}, tampered, tag, plaintext));
    CHECK(plaintext == Bytes(tampered.size()));
  }
  for (size_t bit = 0; bit < aead_tag_size * 8; ++bit) {
    auto tampered = tag;
    tampered[bit / 8] ^= std::byte(1u << (bit % 8));
    Bytes plaintext(rfc_ciphertext.size());
    CHECK_FALSE(opener.open(rfc_nonce, {rfc_associated}, rfc_ciphertext, tampered, plaintext));
  }
  // The opener is still usable after failures.
  Bytes plaintext(rfc_ciphertext.size());
  CHECK(opener.open(rfc_nonce, {rfc_associated}, rfc_ciphertext, tag, plaintext));
}

TEST_CASE("aead: another nonce, key or associated data does not authenticate") {
  const auto tag = array_of<aead_tag_size>(rfc_tag);
  Bytes plaintext(rfc_ciphertext.size());

  AeadNonce other_nonce = rfc_nonce;
  other_nonce[0] ^= std::byte{1};
  ChaCha20Poly1305 opener(rfc_key, Mode::open);
  CHECK_FALSE(opener.open(other_nonce, {rfc_associated}, rfc_ciphertext, tag, plaintext));

  Bytes other_associated = rfc_associated;
  other_associated.back() ^= std::byte{0x80};
  CHECK_FALSE(opener.open(rfc_nonce, {other_associated}, rfc_ciphertext, tag, plaintext));
  CHECK_FALSE(opener.open(rfc_nonce, {}, rfc_ciphertext, tag, plaintext));

  AeadKey other_key = rfc_key;
  other_key[31] ^= std::byte{1};
  ChaCha20Poly1305 other_opener(other_key, Mode::open);
  CHECK_FALSE(other_opener.open(rfc_nonce, {rfc_associated}, rfc_ciphertext, tag, plaintext));
}

}  // namespace tsunagu::security
