#include "security/scram.hpp"

#include <doctest/doctest.h>

#include <string>

#include "security/encoding.hpp"

namespace tsunagu::security::scram {
namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

struct RfcExchange {
  Bytes salted;
  std::string auth;
};

RfcExchange rfc_exchange() {
  auto first = parse_client_first(rfc_client_first);
  auto server_first = parse_server_first(rfc_server_first);
  auto final_message = parse_client_final(rfc_client_final);
  REQUIRE(first);
  REQUIRE(server_first);
  REQUIRE(final_message);
  return {salted_password("pencil", server_first->salt, server_first->iterations),
          auth_message(first->bare, rfc_server_first, final_message->without_proof)};
}

}  // namespace

TEST_CASE("scram: RFC 7677 vector, client side: the proof and the client-final message") {
  RfcExchange exchange = rfc_exchange();
  Bytes proof = client_proof(exchange.salted, exchange.auth);
  CHECK(build_client_final("rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", proof) == rfc_client_final);
  auto server_final = parse_server_final(rfc_server_final);
  REQUIRE(server_final);
  CHECK(verify_server_signature(exchange.salted, exchange.auth, server_final->verifier));
}

TEST_CASE("scram: RFC 7677 vector, node side: stored keys check the proof and sign the answer") {
  RfcExchange exchange = rfc_exchange();
  auto server_first = parse_server_first(rfc_server_first);
  REQUIRE(server_first);
  ServerCredentials credentials = derive_credentials(exchange.salted, server_first->salt, 4096);
  auto final_message = parse_client_final(rfc_client_final);
  REQUIRE(final_message);
  CHECK(verify_client_proof(credentials.stored_key, exchange.auth, final_message->proof));
  CHECK(build_server_final({server_signature(credentials.server_key, exchange.auth), {}}) == rfc_server_final);
  CHECK(build_server_first(*server_first) == rfc_server_first);
  CHECK(build_client_first("user", "rOprNGfwEbeRWgbNEkqO") == rfc_client_first);
}

TEST_CASE("scram: a tampered proof, a wrong password or another AuthMessage fail") {
  RfcExchange exchange = rfc_exchange();
  ServerCredentials credentials =
      derive_credentials(exchange.salted, *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  Bytes proof = client_proof(exchange.salted, exchange.auth);
  REQUIRE(verify_client_proof(credentials.stored_key, exchange.auth, proof));
  for (size_t i = 0; i < proof.size(); ++i) {
    Bytes tampered = proof;
    tampered[i] ^= std::byte{0x01};
    CHECK_FALSE(verify_client_proof(credentials.stored_key, exchange.auth, tampered));
  }
  CHECK_FALSE(verify_client_proof(credentials.stored_key, exchange.auth + "x", proof));
  CHECK_FALSE(verify_client_proof(credentials.stored_key, exchange.auth, ByteView(proof).first(31)));
  Bytes wrong = salted_password("pencil!", credentials.salt, 4096);
  CHECK_FALSE(verify_client_proof(credentials.stored_key, exchange.auth, client_proof(wrong, exchange.auth)));
}

TEST_CASE("scram: the client refuses a ServerSignature made without the ServerKey") {
  RfcExchange exchange = rfc_exchange();
  ServerCredentials real = derive_credentials(exchange.salted, {}, 4096);
  CHECK(verify_server_signature(exchange.salted, exchange.auth, server_signature(real.server_key, exchange.auth)));
  // A node that knows only StoredKey (or nothing) cannot sign.
  CHECK_FALSE(verify_server_signature(exchange.salted, exchange.auth, server_signature(real.stored_key, exchange.auth)));
  Bytes signature = server_signature(real.server_key, exchange.auth);
  signature[0] ^= std::byte{0x80};
  CHECK_FALSE(verify_server_signature(exchange.salted, exchange.auth, signature));
  CHECK_FALSE(verify_server_signature(exchange.salted, exchange.auth, {}));
}

TEST_CASE("scram: stored credentials round-trip and reject malformed or out-of-bounds encodings") {
  ServerCredentials made = make_credentials("correct horse", min_iterations);
  std::string encoded = encode_credentials(made);
  CHECK(encoded.starts_with("$scram-sha256$i=4096$"));
  CHECK(is_scram_credentials(encoded));
  auto decoded = decode_credentials(encoded);
  REQUIRE(decoded);
  CHECK(*decoded == made);
  CHECK(made.salt.size() == salt_size);
  CHECK(make_credentials("correct horse", min_iterations).salt != made.salt);

  ServerCredentials low = made;
  low.iterations = min_iterations - 1;
  CHECK_FALSE(decode_credentials(encode_credentials(low)));
  CHECK_FALSE(decode_credentials("$scrypt$ln=15,r=8,p=1$AAAAAAAAAAA=$AAAA"));
  CHECK_FALSE(is_scram_credentials("$scrypt$ln=15,r=8,p=1$AAAAAAAAAAA=$AAAA"));
  CHECK_FALSE(decode_credentials(encoded + "$"));
  CHECK_FALSE(decode_credentials(encoded.substr(0, encoded.size() - 4)));
  CHECK_FALSE(decode_credentials("$scram-sha256$i=04096$" + encoded.substr(21)));
  CHECK_FALSE(decode_credentials(""));
}

TEST_CASE("scram: usernames are escaped and unescaped as saslname") {
  std::string first = build_client_first("a,b=c", "0123456789abcdef");
  CHECK(first == "n,,n=a=2Cb=3Dc,r=0123456789abcdef");
  auto parsed = parse_client_first(first);
  REQUIRE(parsed);
  CHECK(parsed->username == "a,b=c");
  CHECK(parsed->nonce == "0123456789abcdef");
  CHECK(parsed->bare == "n=a=2Cb=3Dc,r=0123456789abcdef");
  CHECK_FALSE(parse_client_first("n,,n=a=2Db,r=0123456789abcdef"));
  CHECK_FALSE(parse_client_first("n,,n=a=2,r=0123456789abcdef"));
}

TEST_CASE("scram: the parsers refuse what Tsunagu does not speak and what is out of bounds") {
  const std::string nonce(16, 'x');
  CHECK(parse_client_first("n,,n=u,r=" + nonce));
  CHECK_FALSE(parse_client_first("y,,n=u,r=" + nonce));           // channel binding
  CHECK_FALSE(parse_client_first("p=tls-unique,,n=u,r=" + nonce));
  CHECK_FALSE(parse_client_first("n,a=admin,n=u,r=" + nonce));    // authzid
  CHECK_FALSE(parse_client_first("n,,m=ext,n=u,r=" + nonce));     // mandatory extension
  CHECK_FALSE(parse_client_first("n,,n=u,r=" + nonce + ",x=1"));  // extension
  CHECK_FALSE(parse_client_first("n,,n=,r=" + nonce));            // empty username
  CHECK_FALSE(parse_client_first("n,,n=u,r=short"));
  CHECK_FALSE(parse_client_first("n,,n=u,r=" + std::string(max_nonce_size + 1, 'x')));
  CHECK_FALSE(parse_client_first("n,,n=" + std::string(max_username_size + 1, 'u') + ",r=" + nonce));
  CHECK_FALSE(parse_client_first("n,,n=u,r=" + std::string(15, 'x') + " "));
  CHECK_FALSE(parse_client_first(std::string(max_message_size + 1, 'n')));

  const std::string both(32, 'y');
  CHECK(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
  CHECK_FALSE(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095"));
  CHECK_FALSE(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001"));
  CHECK_FALSE(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096"));
  CHECK_FALSE(parse_server_first("r=" + both + ",s=AAAA,i=4096"));  // 3-byte salt
  CHECK_FALSE(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096"));
  CHECK_FALSE(parse_server_first("r=" + both + ",i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ=="));
  CHECK_FALSE(parse_server_first("r=" + both + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,e=1"));

  std::string proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  CHECK(parse_client_final("c=biws,r=" + both + ",p=" + proof));
  CHECK_FALSE(parse_client_final("c=eSws,r=" + both + ",p=" + proof));
  CHECK_FALSE(parse_client_final("c=biws,r=" + both + ",p=AAAA"));
  CHECK_FALSE(parse_client_final("c=biws,p=" + proof + ",r=" + both));
  CHECK_FALSE(parse_client_final("c=biws,r=" + both));

  CHECK(parse_server_final("e=invalid-proof"));
  CHECK(parse_server_final("e=invalid-proof")->error == "invalid-proof");
  CHECK_FALSE(parse_server_final("e="));
  CHECK_FALSE(parse_server_final("v=AAAA"));
  CHECK_FALSE(parse_server_final("x=1"));
}

TEST_CASE("scram: nonces are printable, without commas, and differ") {
  std::string a = make_nonce(), b = make_nonce();
  CHECK(a != b);
  CHECK(a.size() >= min_nonce_size);
  CHECK(a.find(',') == std::string::npos);
  CHECK(parse_client_first(build_client_first("u", a)));
}

}  // namespace tsunagu::security::scram
