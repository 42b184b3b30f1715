// The published directory, the business directory, phone-number lookups and
// self-service profiles (docs/directory.md). The matching and the pages are
// rendezvous/directory_search.hpp; this file reads the accounts, adds who is
// online, and answers.
#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/directory_search.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;
constexpr size_t scan_batch = 256;
// Room for DIRECTORY-ENTRY attributes in one answer, under the 16 KiB message limit.
constexpr size_t max_page_bytes = 14 * 1024;

// Feeds published accounts after `after` in user-ID order to `offer` until it
// returns false; from the node's LMDB or, in cluster mode, PostgreSQL.
template <class Offer>
Expected<void, storage::StoreError> scan_published(AccountDirectory& accounts, std::string after, Offer&& offer) {
  while (true) {
    auto batch = accounts.list_published(after, scan_batch);
    if (!batch) return Unexpected(batch.error());
    for (const auto& account : *batch)
      if (!offer(account)) return {};
    if (batch->size() < scan_batch) return {};
    after = batch->back().user_id;
  }
}

void add_profile(proto::MessageBuilder& b, const Account& a) {
  b.add_string(sig::attr::user_id, a.user_id);
  b.add_string(sig::attr::display_name, a.display_name);
  b.add_string(sig::attr::phone, a.phone);
  b.add_string(sig::attr::category, a.category);
  b.add_u32(sig::attr::publish, a.publish ? 1 : 0);
  b.add_u32(sig::attr::services, a.services);
  b.add_u32(sig::attr::presence_visibility, a.presence_visibility);
  b.add_u32(sig::attr::addresses_shown, a.addresses_shown ? 1 : 0);
  b.add_string(sig::attr::contacts, proto::join_contacts(a.contacts));
}

}  // namespace

bool NodeCore::refuse_directory_scan(LinkId link, const proto::Message& request, const std::string& user, Now now) {
  uint32_t wait = scan_limiter_.charge(user, now.mono_ms);
  if (wait == 0) return false;
  ++counters_.rate_limited;
  auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  builder.add_error(sig::error::too_many_attempts, "Too Many Attempts: too many directory searches; try again later");
  builder.add_u32(sig::attr::retry_after, wait);
  send(link, builder.finish());
  return true;
}

void NodeCore::handle_directory_search(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.user) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  if (refuse_directory_scan(link, request, *state.user, now)) return;
  uint32_t kind = sig::directory_kind::name, limit = 0;
  if (const auto* k = request.find(sig::attr::directory_kind)) {
    auto v = proto::read_u32(*k);
    if (!v) return reply_error(link, request, sig::error::bad_request, "Bad Request: DIRECTORY-KIND is a u32");
    kind = *v;
  }
  if (const auto* l = request.find(sig::attr::directory_limit)) {
    auto v = proto::read_u32(*l);
    if (!v) return reply_error(link, request, sig::error::bad_request, "Bad Request: DIRECTORY-LIMIT is a u32");
    limit = *v;
  }
  const auto* text = request.find(sig::attr::directory_query);
  if (text == nullptr) return reply_error(link, request, sig::error::bad_request, "Bad Request: DIRECTORY-QUERY is required");
  std::string_view after;
  if (const auto* c = request.find(sig::attr::directory_cursor)) after = proto::read_string(*c);
  auto query = make_directory_query(kind, proto::read_string(*text), after, limit);
  if (!query) return reply_error(link, request, sig::error::bad_request, "Bad Request: " + query.error());
  ++counters_.directory_searches;
  DirectoryPager pager(std::move(*query));
  auto scanned = scan_published(accounts_, pager.after(), [&](const Account& a) { return pager.offer(a); });
  if (!scanned) return reply_storage_error(link, request, scanned.error());
  DirectoryPage page = pager.take();
  auto ok = success(request);
  // 50 entries of the largest size would pass the 16 KiB message limit: a
  // page that grows past the budget ends early, its cursor at the last entry
  // sent, so the next page starts right after it and nothing is skipped.
  size_t used = 0;
  for (size_t i = 0; i < page.entries.size(); ++i) {
    auto& entry = page.entries[i];
    entry.online = presence_.find(entry.user_id) != nullptr;
    Bytes record = proto::encode_directory_entry(entry);
    if (used + record.size() + 8 > max_page_bytes) {
      page.next = page.entries[i - 1].user_id;
      break;
    }
    used += record.size() + 8;
    ok.add(sig::attr::directory_entry, record);
  }
  if (page.next) ok.add_string(sig::attr::directory_cursor, *page.next);
  send(link, ok.finish());
}

void NodeCore::handle_directory_categories(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.user) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  if (refuse_directory_scan(link, request, *state.user, now)) return;
  CategoryTally tally;
  auto scanned = scan_published(accounts_, "", [&](const Account& a) {
    tally.offer(a);
    return true;
  });
  if (!scanned) return reply_storage_error(link, request, scanned.error());
  auto ok = success(request);
  for (const auto& category : tally.take()) {
    Bytes record = proto::encode_category_count(category);
    if (!record.empty()) ok.add(sig::attr::directory_category, record);
  }
  send(link, ok.finish());
}

void NodeCore::handle_profile(LinkId link, LinkState& state, const proto::Message& request) {
  if (!state.user) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  const std::string user = *state.user;
  bool set = request.method == sig::method::profile_set;
  proto::ProfileChange change;
  if (set) {
    auto read = proto::read_profile_change(request);
    if (!read) return reply_error(link, request, sig::error::bad_request, "Bad Request: " + read.error());
    if (read->empty()) return reply_error(link, request, sig::error::bad_request, "Bad Request: nothing to change");
    if (auto error = proto::profile_change_error(*read))
      return reply_error(link, request, sig::error::bad_request, "Bad Request: " + *error);
    change = std::move(*read);
  }
  // A change reads and writes inside this turn's write transaction, so two
  // changes in one turn see each other (in cluster mode the directory keeps
  // the turn's profile writes for its reads until they commit).
  if (set && !cluster_mode_ && write_txn() == nullptr) return reply_storage_error(link, request, txn_error_);
  auto found = accounts_.find(user);
  if (!found) return reply_storage_error(link, request, found.error());
  if (!found->has_value()) return reply_error(link, request, sig::error::unknown_user, "Unknown User: your account is gone");
  Account account = **found;
  auto ok = success(request);
  if (!set) {
    add_profile(ok, account);
    return send(link, ok.finish());
  }
  apply_profile_change(account, change);
  if (auto updated = accounts_.update_profile(account); !updated) return reply_storage_error(link, request, updated.error());
  add_profile(ok, account);
  // Acknowledged only once the change is durable.
  reply_after_commit(link, request, ok.finish(), "the profile was not changed");
}

}  // namespace tsunagu::rendezvous
