#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "../proto/test_bytes.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/account.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using tsunagu::proto::SocketAddress;
using tsunagu::proto::test::hex;

namespace {

Account full_account() {
  Account a;
  a.user_id = "4106@acme";
  a.password_hash = "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaA==";
  a.display_name = "Hanako Yamada";
  a.phone = "+81-6-1234-0000";
  a.category = "bakery";
  a.publish = true;
  a.services = 0x5;
  a.static_address = SocketAddress::v4({203, 0, 113, 7}, 5060);
  a.created_at = 1'700'000'000;
  a.generation = 7;
  a.presence_visibility = 2;
  a.addresses_shown = true;
  a.contacts = {"bob", "carol@acme"};
  a.admin = true;
  return a;
}

// The record of Account{user_id "alice", created_at 0x0102030405060708}, by hand:
// version, then tag (1 byte), length (2 bytes), value for each field.
const char* const alice_record =
    "01"                          // record version 1
    "01 0005 61 6c 69 63 65"      // user_id "alice"
    "09 0008 01020304 05060708";  // created_at

}  // namespace

TEST_CASE("an account record survives encode and decode with every field set") {
  Account a = full_account();
  auto back = decode_account(encode_account(a));
  REQUIRE(back.has_value());
  CHECK(*back == a);
  CHECK(back->static_address == SocketAddress::v4({203, 0, 113, 7}, 5060));
}

TEST_CASE("an account record keeps an IPv6 static address") {
  Account a = full_account();
  a.static_address = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42}, 443);
  auto back = decode_account(encode_account(a));
  REQUIRE(back.has_value());
  CHECK(*back == a);
}

TEST_CASE("an account with only a user ID decodes to the defaults") {
  Account a;
  a.user_id = "bob";
  auto back = decode_account(encode_account(a));
  REQUIRE(back.has_value());
  CHECK(*back == a);
  CHECK_FALSE(back->publish);
  CHECK(back->services == 0);
  CHECK_FALSE(back->static_address.has_value());
  CHECK(back->presence_visibility == 0);  // seen by anyone logged in ...
  CHECK_FALSE(back->addresses_shown);     // ... but no private addresses (issue 11)
}

TEST_CASE("the admin role is tag 15; a record written before it reads as not admin") {
  auto old = decode_account(hex(alice_record));  // no tag 15: every record before issue 14
  REQUIRE(old.has_value());
  CHECK_FALSE(old->admin);
  Account a = *old;
  a.admin = true;
  CHECK(encode_account(a) == hex(std::string(alice_record) + "0f 0008 00000000 00000001"));
  auto back = decode_account(encode_account(a));
  REQUIRE(back.has_value());
  CHECK(back->admin);
}

TEST_CASE("an account encodes to the documented tag-length-value bytes") {
  Account a;
  a.user_id = "alice";
  a.created_at = 0x0102030405060708;
  CHECK(encode_account(a) == hex(alice_record));
  auto back = decode_account(hex(alice_record));
  REQUIRE(back.has_value());
  CHECK(*back == a);
}

TEST_CASE("every prefix of a record that cuts a field gives nullopt") {
  Bytes record = hex(alice_record);
  for (size_t n = 0; n < record.size(); ++n) {
    CAPTURE(n);
    auto decoded = decode_account(ByteView(record).first(n));
    if (n == 9) {
      // Ends exactly after the user_id field: a valid, older-looking record.
      REQUIRE(decoded.has_value());
      CHECK(decoded->user_id == "alice");
      CHECK(decoded->created_at == 0);
    } else {
      CHECK_FALSE(decoded.has_value());
    }
  }
}

TEST_CASE("every prefix of a login record that cuts a field gives nullopt") {
  LoginRecord r;
  r.time = 42;
  r.reported = {SocketAddress::v4({192, 168, 1, 20}, 5060)};
  r.observed = SocketAddress::v4({198, 51, 100, 9}, 40000);
  Bytes record = encode_login_record(r);
  // version 1 + time 11 + reported 22 + observed 22
  REQUIRE(record.size() == 56);
  for (size_t n = 0; n < record.size(); ++n) {
    CAPTURE(n);
    auto decoded = decode_login_record(ByteView(record).first(n));
    bool boundary = n == 1 || n == 12 || n == 34;
    CHECK(decoded.has_value() == boundary);
  }
}

TEST_CASE("garbage and foreign records give nullopt") {
  CHECK_FALSE(decode_account({}).has_value());
  CHECK_FALSE(decode_account(hex("01")).has_value());                         // no user ID
  CHECK_FALSE(decode_account(hex("02 01 0005 616c696365")).has_value());      // unknown version
  CHECK_FALSE(decode_account(hex("00 01 0005 616c696365")).has_value());
  CHECK_FALSE(decode_account(hex("01 01 0009 616c696365")).has_value());      // length overruns
  CHECK_FALSE(decode_account(hex("01 01 0005 616c696365 09")).has_value());   // tag without length
  CHECK_FALSE(decode_account(hex("01 01 0005 616c696365 09 00")).has_value());
  CHECK_FALSE(decode_account(as_bytes("{\"user_id\": \"alice\"}")).has_value());

  SUBCASE("numbers must be exactly 8 bytes") {
    CHECK_FALSE(decode_account(hex("01 01 0001 61 09 0004 00000001")).has_value());
    CHECK_FALSE(decode_account(hex("01 01 0001 61 06 0001 01")).has_value());
  }
  SUBCASE("services must fit 32 bits") {
    CHECK_FALSE(decode_account(hex("01 01 0001 61 07 0008 00000001 00000000")).has_value());
    auto ok = decode_account(hex("01 01 0001 61 07 0008 00000000 ffffffff"));
    REQUIRE(ok.has_value());
    CHECK(ok->services == 0xffffffffu);
  }
  SUBCASE("addresses need 19 bytes and family 1 or 2") {
    Bytes good = hex("01 01 0001 61 08 0013 01 13c4 c0a80114 000000000000000000000000");
    REQUIRE(decode_account(good).has_value());
    Bytes bad_family = good;
    bad_family[8] = std::byte{3};
    CHECK_FALSE(decode_account(bad_family).has_value());
    Bytes short_value = hex("01 01 0001 61 08 0012 01 13c4 c0a80114 0000000000000000000000");
    CHECK_FALSE(decode_account(short_value).has_value());
  }
  SUBCASE("a record larger than max_record_size is refused") {
    Account a;
    a.user_id = "alice";
    a.display_name = std::string(max_record_size, 'x');
    CHECK_FALSE(decode_account(encode_account(a)).has_value());
  }
}

TEST_CASE("unknown tags are skipped so newer records still decode") {
  Account a;
  a.user_id = "alice";
  a.created_at = 0x0102030405060708;
  // A field from a future version (tag 200) in the middle, and one empty at the end.
  Bytes newer = hex(
      "01"
      "01 0005 616c696365"
      "c8 0003 aabbcc"
      "09 0008 0102030405060708"
      "fe 0000");
  auto back = decode_account(newer);
  REQUIRE(back.has_value());
  CHECK(*back == a);

  LoginRecord r;
  r.time = 7;
  Bytes newer_login = hex("01 c8 0002 0102 20 0008 0000000000000007");
  auto login = decode_login_record(newer_login);
  REQUIRE(login.has_value());
  CHECK(*login == r);
}

TEST_CASE("the last occurrence of a repeated field wins") {
  auto back = decode_account(hex("01 01 0003 616263 01 0005 616c696365"));
  REQUIRE(back.has_value());
  CHECK(back->user_id == "alice");
}

TEST_CASE("a full contact list of the longest IDs fits a record; one more contact than allowed does not decode") {
  Account a = full_account();
  a.contacts.clear();
  for (size_t i = 0; i < proto::max_contacts; ++i) {
    std::string id = std::to_string(i) + "-";
    a.contacts.push_back(id + std::string(proto::max_user_id_size - id.size(), 'x'));
  }
  Bytes bytes = encode_account(a);
  CHECK(bytes.size() <= max_record_size);
  auto back = decode_account(bytes);
  REQUIRE(back.has_value());
  CHECK(back->contacts == a.contacts);
  a.contacts.resize(proto::max_contacts + 1, "extra");
  CHECK_FALSE(decode_account(encode_account(a)).has_value());
}

TEST_CASE("a login record survives encode and decode") {
  LoginRecord r;
  r.time = 1'700'000'123;
  r.reported = {SocketAddress::v4({192, 168, 1, 20}, 5060),
                SocketAddress::v6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 5061)};
  r.observed = SocketAddress::v4({198, 51, 100, 9}, 40000);
  auto back = decode_login_record(encode_login_record(r));
  REQUIRE(back.has_value());
  CHECK(*back == r);

  LoginRecord empty;
  auto empty_back = decode_login_record(encode_login_record(empty));
  REQUIRE(empty_back.has_value());
  CHECK(*empty_back == empty);
}

TEST_CASE("a login record with a malformed address gives nullopt") {
  // login_reported (33) with a 4-byte value instead of 19.
  CHECK_FALSE(decode_login_record(hex("01 21 0004 c0a80114")).has_value());
  CHECK_FALSE(decode_login_record(hex("01 22 0004 c0a80114")).has_value());
  CHECK_FALSE(decode_login_record(hex("01 20 0004 00000001")).has_value());
  CHECK_FALSE(decode_login_record(hex("05")).has_value());
}
