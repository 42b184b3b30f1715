// The published directory: which accounts a search matches, and pages of
// them. Pure: accounts are fed in ascending user-ID order by whoever reads
// them (LMDB on the node, a vector in the tests), so a page boundary is just
// "the user ID after which the next page starts" and every match turns up on
// exactly one page however the pages are fetched. Unpublished accounts never
// match anything.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/expected.hpp"
#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "rendezvous/account.hpp"

namespace tsunagu::rendezvous {

inline constexpr size_t default_directory_page = 20;
inline constexpr size_t max_directory_page = 50;
inline constexpr size_t max_listed_categories = 128;

struct DirectoryQuery {
  uint32_t kind = 0;  // proto::directory_kind
  std::string text;   // folded: lower-case name text, folded category, or phone digits
  std::string after;  // the cursor: only user IDs greater than this
  size_t limit = default_directory_page;
};

// Checks and normalises a query; the error says what is wrong with it.
Expected<DirectoryQuery, std::string> make_directory_query(uint32_t kind, std::string_view text,
                                                           std::string_view after, uint32_t limit);

// ASCII lower case; other bytes (UTF-8) unchanged.
std::string fold_case(std::string_view text);
bool directory_matches(const DirectoryQuery& query, const Account& account);

struct DirectoryPage {
  std::vector<proto::DirectoryEntry> entries;  // online is left false: presence is the node's
  std::optional<std::string> next;             // cursor for the next page; none when this was the last
};

class DirectoryPager {
 public:
  explicit DirectoryPager(DirectoryQuery query) : query_(std::move(query)) {}
  // The user ID to start reading after (the cursor).
  const std::string& after() const { return query_.after; }
  // Offers the next account in ascending user-ID order; returns false once the
  // page is complete (one match beyond it was seen) and reading can stop.
  bool offer(const Account& account);
  DirectoryPage take();

 private:
  DirectoryQuery query_;
  DirectoryPage page_;
  bool more_ = false;
};

// Counts published businesses per category.
class CategoryTally {
 public:
  void offer(const Account& account);
  // By name; at most max_listed_categories (truncated() says when more existed).
  std::vector<proto::CategoryCount> take();
  bool truncated() const { return truncated_; }

 private:
  std::map<std::string, uint32_t> counts_;
  bool truncated_ = false;
};

// Applies a checked change (proto::profile_change_error said nothing) to an account.
// A change of name, phone or category clears `verified`.
void apply_profile_change(Account& account, const proto::ProfileChange& change);

// Directory searches read every account (there is no index), so each account
// may start `burst` of them back to back and then one per `interval_ms`
// (a virtual-time limiter: one deadline per account). Pure; time is injected.
class DirectoryScanLimiter {
 public:
  DirectoryScanLimiter(unsigned burst, uint64_t interval_ms, size_t max_tracked = 100'000)
      : burst_(burst), interval_ms_(interval_ms), max_tracked_(max_tracked) {}
  // 0 when `user` may scan now (and the scan is charged); otherwise the
  // seconds until it may.
  uint32_t charge(const std::string& user, uint64_t now_ms);
  size_t tracked() const { return next_free_ms_.size(); }

 private:
  unsigned burst_;
  uint64_t interval_ms_;
  size_t max_tracked_;
  // When the user's budget is whole again; past it, the entry may go.
  std::unordered_map<std::string, uint64_t> next_free_ms_;
};

}  // namespace tsunagu::rendezvous
