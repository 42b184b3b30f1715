#include "rendezvous/directory_search.hpp"

#include <algorithm>

#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {

namespace kind = proto::directory_kind;

std::string fold_case(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Expected<DirectoryQuery, std::string> make_directory_query(uint32_t query_kind, std::string_view text,
                                                           std::string_view after, uint32_t limit) {
  DirectoryQuery q;
  q.kind = query_kind;
  q.after = std::string(after);
  if (!q.after.empty() && !proto::valid_user_id(q.after)) return Unexpected(std::string("the cursor is not a user ID"));
  if (limit == 0) limit = default_directory_page;
  if (limit > max_directory_page) return Unexpected(std::string("at most 50 entries per page"));
  q.limit = limit;
  if (!proto::valid_profile_text(text, proto::max_directory_query_size))
    return Unexpected(std::string("the search text is at most 64 bytes of text"));
  switch (query_kind) {
    case kind::name:
    case kind::name_prefix:
      q.text = fold_case(text);
      if (q.text.empty()) return Unexpected(std::string("give some text to search for"));
      break;
    case kind::business:
      q.text = proto::fold_category(text);
      if (q.text.empty()) return Unexpected(std::string("give a category"));
      break;
    case kind::phone:
      if (!proto::valid_phone(text)) return Unexpected(std::string("not a phone number"));
      q.text = proto::phone_digits(text);
      break;
    default: return Unexpected(std::string("unknown DIRECTORY-KIND"));
  }
  return q;
}

namespace {

// The text, or any word of it (after a space, '-', '.' or '_'), starts with `prefix`.
bool word_prefix(std::string_view text, std::string_view prefix) {
  for (size_t at = 0; at < text.size(); ++at) {
    bool word_start = at == 0 || text[at - 1] == ' ' || text[at - 1] == '-' || text[at - 1] == '.' ||
                      text[at - 1] == '_';
    if (word_start && text.substr(at).starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

bool directory_matches(const DirectoryQuery& q, const Account& a) {
  if (!a.publish) return false;
  switch (q.kind) {
    case kind::name: {
      std::string name = fold_case(a.display_name);
      return name.find(q.text) != std::string::npos || a.user_id.find(q.text) != std::string::npos;
    }
    case kind::name_prefix: return word_prefix(fold_case(a.display_name), q.text) || word_prefix(a.user_id, q.text);
    case kind::business: return !a.category.empty() && proto::fold_category(a.category) == q.text;
    case kind::phone: return !a.phone.empty() && proto::phone_digits(a.phone) == q.text;
    default: return false;
  }
}

bool DirectoryPager::offer(const Account& a) {
  if (more_) return false;
  if (a.user_id <= query_.after || !directory_matches(query_, a)) return true;
  if (page_.entries.size() == query_.limit) {
    more_ = true;
    return false;
  }
  page_.entries.push_back(proto::DirectoryEntry{a.user_id, a.display_name, a.category, a.phone, false, a.verified});
  return true;
}

DirectoryPage DirectoryPager::take() {
  if (more_ && !page_.entries.empty()) page_.next = page_.entries.back().user_id;
  more_ = false;
  return std::move(page_);
}

void CategoryTally::offer(const Account& a) {
  if (!a.publish || a.category.empty()) return;
  ++counts_[proto::fold_category(a.category)];
}

std::vector<proto::CategoryCount> CategoryTally::take() {
  std::vector<proto::CategoryCount> out;
  for (const auto& [name, count] : counts_) {
    if (out.size() == max_listed_categories) {
      truncated_ = true;
      break;
    }
    out.push_back(proto::CategoryCount{name, count});
  }
  counts_.clear();
  return out;
}

void apply_profile_change(Account& account, const proto::ProfileChange& change) {
  // The operator vouched for the row as it was: a new name, number or category is unchecked again.
  if ((change.display_name && *change.display_name != account.display_name) ||
      (change.phone && *change.phone != account.phone) || (change.category && *change.category != account.category))
    account.verified = false;
  if (change.display_name) account.display_name = *change.display_name;
  if (change.phone) account.phone = *change.phone;
  if (change.category) account.category = *change.category;
  if (change.publish) account.publish = *change.publish;
  if (change.voicemail)
    account.services = *change.voicemail ? (account.services | proto::service_flag::voicemail)
                                         : (account.services & ~proto::service_flag::voicemail);
  if (change.presence_visibility) account.presence_visibility = *change.presence_visibility;
  if (change.addresses_shown) account.addresses_shown = *change.addresses_shown;
  if (change.contacts) account.contacts = *change.contacts;
}

uint32_t DirectoryScanLimiter::charge(const std::string& user, uint64_t now_ms) {
  if (next_free_ms_.size() >= max_tracked_)
    std::erase_if(next_free_ms_, [&](const auto& entry) { return entry.second <= now_ms; });
  uint64_t& free_at = next_free_ms_[user];
  uint64_t start = std::max(free_at, now_ms);
  uint64_t window = uint64_t{burst_} * interval_ms_;
  if (start + interval_ms_ > now_ms + window) {  // the burst is spent
    uint64_t wait_ms = start + interval_ms_ - now_ms - window;
    return static_cast<uint32_t>((wait_ms + 999) / 1000);
  }
  free_at = start + interval_ms_;
  return 0;
}

}  // namespace tsunagu::rendezvous
