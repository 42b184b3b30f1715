#include <doctest/doctest.h>

#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;

TEST_CASE("directory entry: round trip; every truncation and any extra byte refused") {
  DirectoryEntry e{"alice", "Alice Smith", "hospital", "+81-6-1234-0000", true};
  Bytes b = encode_directory_entry(e);
  REQUIRE(!b.empty());
  REQUIRE(decode_directory_entry(b).has_value());
  CHECK(*decode_directory_entry(b) == e);
  for (size_t n = 0; n < b.size(); ++n) CHECK_FALSE(decode_directory_entry(ByteView(b).first(n)).has_value());
  Bytes longer = b;
  longer.push_back(std::byte{0});
  CHECK_FALSE(decode_directory_entry(longer).has_value());
}

TEST_CASE("directory entry: the operator-verified flag is bit 1 of the flags; unknown bits are refused (issue 11)") {
  DirectoryEntry e{"alice", "Alice Smith", "", "+81-6-1234-0000", false, true};
  Bytes b = encode_directory_entry(e);
  REQUIRE(!b.empty());
  CHECK(b[0] == std::byte{2});
  CHECK(decode_directory_entry(b) == e);
  b[0] = std::byte{4};
  CHECK_FALSE(decode_directory_entry(b).has_value());
}

TEST_CASE("directory entry: fields over their limits are neither encoded nor decoded") {
  DirectoryEntry e{"alice", std::string(129, 'n'), "", "", false};
  CHECK(encode_directory_entry(e).empty());
  // A hand-made record whose category claims 65 bytes.
  Bytes b{std::byte{0}, std::byte{1}, std::byte{'a'}, std::byte{0}, std::byte{65}};
  b.resize(b.size() + 65, std::byte{'c'});
  b.push_back(std::byte{0});
  CHECK_FALSE(decode_directory_entry(b).has_value());
  CHECK_FALSE(decode_directory_entry(Bytes(max_directory_record_size + 1, std::byte{0})).has_value());
}

TEST_CASE("category and voicemail entries round trip") {
  CategoryCount c{"patent office", 12};
  CHECK(*decode_category_count(encode_category_count(c)) == c);
  VoicemailEntry v{42, 1'700'000'000, 99'999, "+81-6-1234-0000"};
  CHECK(*decode_voicemail_entry(encode_voicemail_entry(v)) == v);
  CHECK_FALSE(decode_voicemail_entry(Bytes(24, std::byte{0})).has_value());  // no caller
}

TEST_CASE("profile words: parsed, folded and checked") {
  auto change = parse_profile_assignments({"name=Alice Smith", "phone=+81 6 1234 0000", "category=  Patent   OFFICE ",
                                           "publish=yes", "voicemail=no"});
  REQUIRE(change.has_value());
  CHECK(*change->display_name == "Alice Smith");
  CHECK(*change->category == "patent office");
  CHECK(*change->publish);
  CHECK_FALSE(*change->voicemail);
  CHECK_FALSE(parse_profile_assignments({}).has_value());
  CHECK_FALSE(parse_profile_assignments({"publish=perhaps"}).has_value());
  CHECK_FALSE(parse_profile_assignments({"=x"}).has_value());
  CHECK_FALSE(parse_profile_assignments({"phone=12a"}).has_value());
  CHECK_FALSE(parse_profile_assignments({"name=" + std::string(129, 'x')}).has_value());
  CHECK(parse_profile_assignments({"phone="})->phone->empty());  // removes the number
}

TEST_CASE("profile words: presence=anyone|contacts|nobody, contacts=ID,... and addresses=yes|no (issue 11)") {
  auto change = parse_profile_assignments({"presence=nobody", "addresses=yes"});
  REQUIRE(change.has_value());
  CHECK(change->presence_visibility == presence_visibility::nobody);
  CHECK(change->addresses_shown == true);
  CHECK(parse_profile_assignments({"presence=anyone"})->presence_visibility == presence_visibility::anyone);
  auto contacts = parse_profile_assignments({"presence=contacts", "contacts=bob, carol,,bob"});
  REQUIRE(contacts.has_value());
  CHECK(contacts->presence_visibility == presence_visibility::contacts);
  CHECK(contacts->contacts == std::vector<std::string>{"bob", "carol"});
  CHECK(parse_profile_assignments({"contacts="})->contacts == std::vector<std::string>{});  // clears the list
  CHECK_FALSE(parse_profile_assignments({"presence=friends"}).has_value());
  CHECK_FALSE(parse_profile_assignments({"addresses=maybe"}).has_value());
  auto bad = parse_profile_assignments({"contacts=bob,not an id"});
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().find("not an id") != std::string::npos);
  std::string many;
  for (size_t i = 0; i <= max_contacts; ++i) many += (i ? "," : "") + std::string("u") + std::to_string(i);
  CHECK_FALSE(parse_profile_assignments({"contacts=" + many}).has_value());

  // The list travels whole, an empty one too (it clears the stored list).
  for (const auto& list : {std::vector<std::string>{"bob", "carol@acme"}, std::vector<std::string>{}}) {
    ProfileChange sent;
    sent.contacts = list;
    MessageBuilder b(MessageClass::request, method::profile_set, TransactionId{});
    add_profile_change(b, sent);
    Bytes bytes = b.finish();
    auto decoded = decode(bytes);
    REQUIRE(decoded.has_value());
    auto read = read_profile_change(decoded->message);
    REQUIRE(read.has_value());
    CHECK(read->contacts == list);
  }
}

TEST_CASE("phone numbers: digits compared, punctuation allowed") {
  CHECK(valid_phone("+81-6-1234-0000"));
  CHECK(valid_phone("(06) 1234.0000"));
  CHECK_FALSE(valid_phone("+"));
  CHECK_FALSE(valid_phone("1+2"));
  CHECK_FALSE(valid_phone(std::string(33, '1')));
  CHECK(phone_digits("+81 (6) 1234-0000") == "+81612340000");
}

TEST_CASE("profile change travels in a profile_set request") {
  ProfileChange c;
  c.display_name = "Bob";
  c.publish = false;
  c.voicemail = true;
  TransactionId id;
  MessageBuilder b(MessageClass::request, method::profile_set, id);
  add_profile_change(b, c);
  Bytes bytes = b.finish();
  auto decoded = decode(bytes);
  REQUIRE(decoded.has_value());
  auto read = read_profile_change(decoded->message);
  REQUIRE(read.has_value());
  CHECK(*read == c);
}
