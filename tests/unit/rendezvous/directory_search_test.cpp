// The pure directory search: matching rules, pages, and a property test over
// random users and queries (issue 6): an unpublished user never appears, and
// following the cursor returns every published match exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include "proto/signalling.hpp"
#include "rendezvous/directory_search.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
namespace kind = tsunagu::proto::directory_kind;

namespace {

Account person(std::string id, std::string name, bool publish, std::string category = {}, std::string phone = {}) {
  Account a;
  a.user_id = std::move(id);
  a.display_name = std::move(name);
  a.publish = publish;
  a.category = std::move(category);
  a.phone = std::move(phone);
  return a;
}

DirectoryQuery query(uint32_t k, std::string_view text, std::string_view after = {}, uint32_t limit = 0) {
  auto q = make_directory_query(k, text, after, limit);
  REQUIRE(q.has_value());
  return *q;
}

// Runs one page over accounts sorted by user ID, the way the node feeds LMDB's order.
DirectoryPage run_page(const std::vector<Account>& sorted, const DirectoryQuery& q) {
  DirectoryPager pager(q);
  for (const auto& a : sorted)
    if (!pager.offer(a)) break;
  return pager.take();
}

std::vector<std::string> all_pages(const std::vector<Account>& sorted, DirectoryQuery q, size_t* pages = nullptr) {
  std::vector<std::string> out;
  size_t count = 0;
  while (true) {
    DirectoryPage page = run_page(sorted, q);
    ++count;
    REQUIRE(page.entries.size() <= q.limit);
    for (const auto& e : page.entries) out.push_back(e.user_id);
    if (!page.next) break;
    REQUIRE(*page.next > q.after);  // the cursor always moves forward
    q.after = *page.next;
    REQUIRE(count < 10'000);
  }
  if (pages) *pages = count;
  return out;
}

}  // namespace

TEST_CASE("search: case-insensitive substring of the name or the user ID, published only") {
  std::vector<Account> accounts{person("alice", "Alice Smith", true), person("bob", "ALICE Bob", false),
                                person("carol", "Carol Alison", true), person("malice", "M", true),
                                person("zed", "Zed", true)};
  auto page = run_page(accounts, query(kind::name, "aLi"));
  std::vector<std::string> ids;
  for (const auto& e : page.entries) ids.push_back(e.user_id);
  CHECK(ids == std::vector<std::string>{"alice", "carol", "malice"});
  CHECK(!page.next);
}

TEST_CASE("search: prefix matches the name, a word of it, or the user ID") {
  Account a = person("x1", "Carol Alison", true);
  CHECK(directory_matches(query(kind::name_prefix, "ali"), a));
  CHECK(directory_matches(query(kind::name_prefix, "car"), a));
  CHECK_FALSE(directory_matches(query(kind::name_prefix, "lison"), a));
  CHECK(directory_matches(query(kind::name_prefix, "x"), a));
  CHECK_FALSE(directory_matches(query(kind::name_prefix, "1"), a));
}

TEST_CASE("search: business categories fold case and spaces; phone numbers compare digits") {
  Account clinic = person("clinic", "Clinic", true, "hospital", "+81-6-1234-0000");
  CHECK(directory_matches(query(kind::business, "  HOSPITAL "), clinic));
  CHECK_FALSE(directory_matches(query(kind::business, "hospit"), clinic));
  CHECK(directory_matches(query(kind::phone, "+81 6 1234 0000"), clinic));
  CHECK(directory_matches(query(kind::phone, "+81(6)1234.0000"), clinic));
  CHECK_FALSE(directory_matches(query(kind::phone, "+81-6-1234-0001"), clinic));
  clinic.publish = false;
  CHECK_FALSE(directory_matches(query(kind::business, "hospital"), clinic));
  CHECK_FALSE(directory_matches(query(kind::phone, "+81-6-1234-0000"), clinic));
}

TEST_CASE("search: bad queries are refused with a reason") {
  CHECK_FALSE(make_directory_query(kind::name, "", {}, 0).has_value());
  CHECK_FALSE(make_directory_query(kind::name, std::string(65, 'a'), {}, 0).has_value());
  CHECK_FALSE(make_directory_query(kind::name, "a\nb", {}, 0).has_value());
  CHECK_FALSE(make_directory_query(kind::name, "a", "Not An ID", 0).has_value());
  CHECK_FALSE(make_directory_query(kind::name, "a", {}, 51).has_value());
  CHECK_FALSE(make_directory_query(kind::phone, "call me", {}, 0).has_value());
  CHECK_FALSE(make_directory_query(99, "a", {}, 0).has_value());
  CHECK(make_directory_query(kind::name, "a", {}, 0)->limit == default_directory_page);
}

TEST_CASE("pages: a full last page has no cursor, a page with more after it has one") {
  std::vector<Account> accounts;
  for (int i = 0; i < 6; ++i) accounts.push_back(person("u" + std::to_string(i), "Same", true));
  auto first = run_page(accounts, query(kind::name, "same", {}, 3));
  REQUIRE(first.next);
  CHECK(*first.next == "u2");
  auto second = run_page(accounts, query(kind::name, "same", *first.next, 3));
  CHECK(second.entries.size() == 3);
  CHECK(!second.next);
}

TEST_CASE("property: unpublished users never appear; pages return every published match exactly once") {
  std::mt19937 random(20261122);  // fixed: a failure reproduces
  const std::string alphabet = "abcAB -";
  auto random_text = [&](size_t min, size_t max) {
    std::string s(std::uniform_int_distribution<size_t>(min, max)(random), ' ');
    for (char& c : s) c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(random)];
    return s;
  };
  const std::vector<std::string> categories{"", "hospital", "patent office", "Hospital"};
  const std::vector<std::string> phones{"", "+81-6-1234-0000", "+81 6 1234 0000", "06-1234"};
  size_t matches = 0, hidden_candidates = 0;  // the property is not vacuous
  for (int round = 0; round < 200; ++round) {
    std::set<std::string> used;
    std::vector<Account> accounts;
    size_t n = std::uniform_int_distribution<size_t>(0, 80)(random);
    while (accounts.size() < n) {
      std::string id = "u" + std::to_string(std::uniform_int_distribution<int>(0, 999)(random));
      if (!used.insert(id).second) continue;
      accounts.push_back(person(id, random_text(0, 12), random() % 2 == 0,
                                categories[random() % categories.size()], phones[random() % phones.size()]));
    }
    std::sort(accounts.begin(), accounts.end(), [](const Account& a, const Account& b) { return a.user_id < b.user_id; });
    uint32_t k = static_cast<uint32_t>(random() % 4);
    std::string text = k == kind::business ? categories[1 + random() % 3]
                       : k == kind::phone  ? phones[1 + random() % 3]
                                           : random_text(1, 3);
    auto q = make_directory_query(k, text, {}, static_cast<uint32_t>(1 + random() % 7));
    if (!q) continue;  // e.g. a text of only spaces after folding
    std::vector<std::string> expected;
    for (const auto& a : accounts)
      if (directory_matches(*q, a)) expected.push_back(a.user_id);
    size_t pages = 0;
    auto got = all_pages(accounts, *q, &pages);
    CAPTURE(round);
    CAPTURE(text);
    CHECK(got == expected);  // every match once, in order
    matches += got.size();
    DirectoryQuery everyone = *q;
    for (auto& a : accounts) {
      Account shown = a;
      shown.publish = true;
      hidden_candidates += !a.publish && directory_matches(everyone, shown);
    }
    for (const auto& id : got) {
      auto it = std::find_if(accounts.begin(), accounts.end(), [&](const Account& a) { return a.user_id == id; });
      REQUIRE(it != accounts.end());
      CHECK(it->publish);  // never an unpublished user
    }
    CHECK(pages == std::max<size_t>(1, (expected.size() + q->limit - 1) / q->limit));
  }
  CHECK(matches > 500);
  CHECK(hidden_candidates > 500);  // unpublished users that would have matched were there
}

TEST_CASE("categories: published businesses counted per folded name") {
  CategoryTally tally;
  tally.offer(person("a", "A", true, "hospital"));
  tally.offer(person("b", "B", true, "hospital"));
  tally.offer(person("c", "C", false, "hospital"));
  tally.offer(person("d", "D", true, "patent office"));
  tally.offer(person("e", "E", true));
  auto list = tally.take();
  REQUIRE(list.size() == 2);
  CHECK(list[0] == proto::CategoryCount{"hospital", 2});
  CHECK(list[1] == proto::CategoryCount{"patent office", 1});
  CHECK_FALSE(tally.truncated());
}

TEST_CASE("profile changes apply field by field") {
  Account a = person("a", "Old", false);
  auto change = proto::parse_profile_assignments({"name=New Name", "publish=yes", "voicemail=yes", "category=Bakery"});
  REQUIRE(change.has_value());
  apply_profile_change(a, *change);
  CHECK(a.display_name == "New Name");
  CHECK(a.publish);
  CHECK(a.category == "bakery");
  CHECK((a.services & proto::service_flag::voicemail) != 0);
  apply_profile_change(a, *proto::parse_profile_assignments({"voicemail=no"}));
  CHECK((a.services & proto::service_flag::voicemail) == 0);
  CHECK(a.display_name == "New Name");
}

TEST_CASE("directory scans: a burst per account, then one per interval; accounts apart (issue 11)") {
  DirectoryScanLimiter limiter(3, 2000);
  for (int i = 0; i < 3; ++i) CHECK(limiter.charge("mallory", 10'000) == 0);
  CHECK(limiter.charge("mallory", 10'000) == 2);  // seconds until one more
  CHECK(limiter.charge("alice", 10'000) == 0);    // another account is not charged
  CHECK(limiter.charge("mallory", 11'999) == 1);
  CHECK(limiter.charge("mallory", 12'000) == 0);
  CHECK(limiter.charge("mallory", 12'000) == 2);
  CHECK(limiter.charge("mallory", 18'000) == 0);  // refilled while idle, never beyond the burst
  CHECK(limiter.charge("mallory", 18'000) == 0);
  CHECK(limiter.charge("mallory", 18'000) == 0);
  CHECK(limiter.charge("mallory", 18'000) == 2);
}

TEST_CASE("directory scans: the limiter's memory stays bounded under many accounts") {
  DirectoryScanLimiter limiter(1, 1000, 100);
  for (int i = 0; i < 1000; ++i) limiter.charge("user" + std::to_string(i), uint64_t(i) * 1000);
  CHECK(limiter.tracked() <= 101);
}

TEST_CASE("a change of name, phone or category clears the operator's verification; other changes keep it") {
  Account a;
  a.user_id = "bank";
  a.display_name = "Real Bank";
  a.verified = true;
  proto::ProfileChange change;
  change.voicemail = true;
  apply_profile_change(a, change);
  CHECK(a.verified);
  change.display_name = "Real Bank";  // unchanged
  apply_profile_change(a, change);
  CHECK(a.verified);
  change.phone = "+81-3-0000-0000";
  apply_profile_change(a, change);
  CHECK_FALSE(a.verified);
}
