#include "security/digest.hpp"
#include "security/encoding.hpp"
#include "security/passwords.hpp"
#include "security/random.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace tsunagu::security {
namespace {

// Small work factor so the suite stays fast; one test uses the defaults.
constexpr ScryptParameters fast{.log2_n = 10, .r = 8, .p = 1};

std::string hex(ByteView bytes) { return to_hex(bytes); }

TEST_CASE("passwords: verify accepts the right password and rejects a wrong one") {
  std::string stored = hash_password("correct horse", fast);
  CHECK(verify_password("correct horse", stored));
  CHECK_FALSE(verify_password("correct horsE", stored));
  CHECK_FALSE(verify_password("", stored));
  CHECK_FALSE(verify_password("correct horse ", stored));
}

TEST_CASE("passwords: the encoding carries the parameters, a 16-byte salt and a 32-byte hash") {
  std::string stored = hash_password("pw", {.log2_n = 11, .r = 4, .p = 2});
  REQUIRE(stored.starts_with("$scrypt$ln=11,r=4,p=2$"));
  std::string rest = stored.substr(std::string("$scrypt$ln=11,r=4,p=2$").size());
  size_t dollar = rest.find('$');
  REQUIRE(dollar != std::string::npos);
  auto salt = base64_decode(rest.substr(0, dollar));
  auto hash = base64_decode(rest.substr(dollar + 1));
  REQUIRE(salt);
  REQUIRE(hash);
  CHECK(salt->size() == 16);
  CHECK(hash->size() == 32);
  CHECK(verify_password("pw", stored));
}

TEST_CASE("passwords: two hashes of the same password differ") {
  std::string first = hash_password("same", fast);
  std::string second = hash_password("same", fast);
  CHECK(first != second);
  CHECK(verify_password("same", first));
  CHECK(verify_password("same", second));
}

TEST_CASE("passwords: the default parameters work") {
  std::string stored = hash_password("default strength");
  CHECK(stored.starts_with("$scrypt$ln=15,r=8,p=1$"));
  CHECK(verify_password("default strength", stored));
  CHECK_FALSE(verify_password("default strengtH", stored));
}

TEST_CASE("passwords: an empty password can be hashed and verified") {
  std::string stored = hash_password("", fast);
  CHECK(verify_password("", stored));
  CHECK_FALSE(verify_password("x", stored));
}

TEST_CASE("passwords: a known-answer hash verifies") {
  // salt "0123456789abcdef", N=1024, r=8, p=1, computed once with:
  //   openssl kdf -keylen 32 -kdfopt pass:password -kdfopt salt:0123456789abcdef
  //     -kdfopt n:1024 -kdfopt r:8 -kdfopt p:1 SCRYPT | tr -d ':\n' | xxd -r -p | base64
  // (the same command reproduces RFC 7914's "password"/"NaCl" vector).
  const std::string stored =
      "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$ZEBCzLptWM7dhpNJDU2HbQ945ovKHmVEozHkePPbSqw=";
  CHECK(verify_password("password", stored));
  CHECK_FALSE(verify_password("Password", stored));
}

TEST_CASE("passwords: malformed encodings are rejected without crashing") {
  const std::string good =
      "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$ZEBCzLptWM7dhpNJDU2HbQ945ovKHmVEozHkePPbSqw=";
  const std::string salt = "MDEyMzQ1Njc4OWFiY2RlZg==";
  const std::string hash = "ZEBCzLptWM7dhpNJDU2HbQ945ovKHmVEozHkePPbSqw=";
  const std::vector<std::string> malformed = {
      "",
      "password",
      "$scrypt$",
      "$bcrypt$ln=10,r=8,p=1$" + salt + "$" + hash,              // wrong prefix
      "$SCRYPT$ln=10,r=8,p=1$" + salt + "$" + hash,              // prefix is case-sensitive
      "scrypt$ln=10,r=8,p=1$" + salt + "$" + hash,               // missing leading $
      "$scrypt$ln=10,r=8$" + salt + "$" + hash,                  // missing p
      "$scrypt$r=8,ln=10,p=1$" + salt + "$" + hash,              // parameters out of order
      "$scrypt$ln=010,r=8,p=1$" + salt + "$" + hash,             // leading zero
      "$scrypt$ln=+10,r=8,p=1$" + salt + "$" + hash,             // sign
      "$scrypt$ln=10 ,r=8,p=1$" + salt + "$" + hash,             // space
      "$scrypt$ln=99999999999999999999,r=8,p=1$" + salt + "$" + hash,  // overflow
      "$scrypt$ln=21,r=8,p=1$" + salt + "$" + hash,              // huge N (2 GiB of memory)
      "$scrypt$ln=63,r=8,p=1$" + salt + "$" + hash,              // absurd N
      "$scrypt$ln=0,r=8,p=1$" + salt + "$" + hash,               // N = 1 is not scrypt
      "$scrypt$ln=20,r=8,p=1$" + salt + "$" + hash,              // 1 GiB: over the memory cap
      "$scrypt$ln=10,r=0,p=1$" + salt + "$" + hash,              // r = 0
      "$scrypt$ln=10,r=8,p=0$" + salt + "$" + hash,              // p = 0
      "$scrypt$ln=10,r=8,p=9999$" + salt + "$" + hash,           // r*p too big (CPU)
      "$scrypt$ln=10,r=9999,p=1$" + salt + "$" + hash,           // r too big
      "$scrypt$ln=10,r=8,p=1$" + salt,                           // no hash
      "$scrypt$ln=10,r=8,p=1$" + salt + "$",                     // empty hash
      "$scrypt$ln=10,r=8,p=1$$" + hash,                          // empty salt
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + hash + "$",        // trailing separator
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + hash + "\n",       // trailing newline
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + hash.substr(0, 40),  // truncated hash
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + "AAAA" + hash,     // 35-byte hash
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + "ZEBC*LptWM7dhpNJDU2HbQ945ovKHmVEozHkePPbSqw=",  // bad base64
      "$scrypt$ln=10,r=8,p=1$MDEy$" + hash,                      // 3-byte salt
      "$scrypt$ln=10,r=8,p=1$" + salt + "$" + std::string(100000, 'A'),  // oversized
      std::string("$scrypt$ln=10,r=8,p=1$") + '\0' + salt + "$" + hash,
  };
  CHECK(verify_password("password", good));
  for (const std::string& encoded : malformed) {
    CAPTURE(encoded);
    CHECK_FALSE(verify_password("password", encoded));
  }
}

TEST_CASE("base64: RFC 4648 test vectors") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  // Named copies: clang 14 cannot capture a structured binding (CAPTURE makes a lambda).
  for (const auto& vector : vectors) {
    const char* plain = vector.first;
    const char* encoded = vector.second;
    CAPTURE(plain);
    CHECK(base64_encode(as_bytes(plain)) == encoded);
    auto decoded = base64_decode(encoded);
    REQUIRE(decoded);
    CHECK(as_chars(*decoded) == plain);
  }
}

TEST_CASE("base64: every length and byte value round trips") {
  Bytes data;
  for (int length = 0; length < 300; ++length) {
    auto decoded = base64_decode(base64_encode(data));
    REQUIRE(decoded);
    CHECK(*decoded == data);
    data.push_back(std::byte(length * 37 + 11));
  }
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<size_t>(i)] = std::byte(i);
  CHECK(base64_decode(base64_encode(all)) == all);
}

TEST_CASE("base64: invalid text is rejected") {
  for (const char* bad : {"Zg=", "Zg", "Z", "Zm9v!", "Zm9v====", "=Zm9", "Zm=v", "Z===", "Zm9vYg=a", "Zm 9v", "Zm9v\n",
                          "Zh==", "Zm9=", "Zm-v", "Zm_v", "===="}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad));
  }
}

TEST_CASE("sha256: FIPS 180-2 vectors") {
  CHECK(hex(sha256(as_bytes("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(sha256({})) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("hmac_sha1: RFC 2202 vectors") {
  CHECK(hex(hmac_sha1(Bytes(20, std::byte{0x0b}), as_bytes("Hi There"))) ==
        "b617318655057264e28bc0b6fb378c8ef146be00");
  CHECK(hex(hmac_sha1(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(hex(hmac_sha1(Bytes(20, std::byte{0xaa}), Bytes(50, std::byte{0xdd}))) ==
        "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
  CHECK(hex(hmac_sha1(Bytes(80, std::byte{0xaa}), as_bytes("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
        "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST_CASE("hmac_sha1: a TURN REST credential matches the openssl CLI") {
  // TURN REST API password = base64(HMAC-SHA1(shared secret, "expiry:user")).
  // Expected value computed once with:
  //   printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64
  CHECK(base64_encode(hmac_sha1(as_bytes("secret"), as_bytes("1700000000:alice"))) == "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
}

TEST_CASE("random_bytes: fills what it is given, differently each time") {
  Bytes first = random_bytes(32);
  Bytes second = random_bytes(32);
  CHECK(first.size() == 32);
  CHECK(first != second);
  CHECK(random_bytes(0).empty());
  std::byte buffer[8] = {};
  random_bytes(std::span<std::byte>(buffer));
  CHECK(hex(buffer) != "0000000000000000");
}

}  // namespace
}  // namespace tsunagu::security
