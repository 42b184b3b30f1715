// The rendezvous node's request handling, without sockets or clocks: links
// open and close, messages arrive, time passes (inputs); messages to send,
// links to close and password work for the thread pool come out. The daemon
// (node_daemon.cpp) turns libuv callbacks into these calls.
//
// Durable writes are group-committed: handlers write into one LMDB transaction
// per loop turn and queue their replies; commit_turn() commits once and only
// then releases those replies (or a 503 in their place if the commit failed).
#pragma once

#include <cstdint>
#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/audit.hpp"
#include "base/bytes.hpp"
#include "base/heap_optional.hpp"
#include "proto/stun_message.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/account_store.hpp"
#include "rendezvous/agent_directory.hpp"
#include "rendezvous/agent_registry.hpp"
#include "rendezvous/call_table.hpp"
#include "cards/call_charge.hpp"
#include "rendezvous/area_prefixes.hpp"
#include "rendezvous/card_admission.hpp"
#include "rendezvous/card_ledger_store.hpp"
#include "rendezvous/relay_names.hpp"
#include "rendezvous/deadline_queue.hpp"
#include "rendezvous/directory_search.hpp"
#include "rendezvous/forward_table.hpp"
#include "rendezvous/login_limiter.hpp"
#include "rendezvous/presence_table.hpp"
#include "rendezvous/upload_table.hpp"
#include "rendezvous/voicemail_boxes.hpp"
#include "rendezvous/voicemail_store.hpp"
#include "security/passwords.hpp"
#include "security/random.hpp"
#include "security/scram.hpp"

namespace tsunagu::rendezvous {

struct NodeSettings {
  uint32_t keepalive_interval_s = 15;
  uint32_t keepalive_misses = 3;  // presence ends after this many silent intervals
  uint32_t login_timeout_s = 20;  // a link that has not logged in by then is closed
  bool open_registration = false;
  uint32_t max_bad_messages = 8;  // per link, then it is closed
  LoginLimiter::Policy login_limits;
  size_t max_password_jobs = 32;  // logins and registrations being hashed, node-wide (503 beyond)
  size_t max_links = 10'000;               // node-wide; the daemon keeps it below the descriptor limit
  size_t max_links_per_account = 8;        // links logged in as one account at once
  size_t max_prelogin_links_per_source = 16;  // links from one source that have not logged in yet
  uint32_t idle_timeout_s = 120;  // a link holding no presence (query links) with no message for this long is closed
  security::ScryptParameters password_hashing;  // scrypt: what legacy accounts hold (docs/security.md)
  // PBKDF2 iterations of the SCRAM credentials made for new accounts and by
  // migrations; node.toml passwords.scram_iterations. Production keeps the
  // default; tests may lower it, never below security::scram::min_iterations.
  uint32_t scram_iterations = security::scram::default_iterations;
  // How long a session-resumption token stays valid (node.toml
  // passwords.resume_token_ttl); 0: none are issued and none taken.
  uint32_t resume_token_ttl_s = 86'400;
  uint32_t forward_timeout_ms = 3000;     // how long a LAN agent has to answer a forwarded lookup
  size_t max_forwards_per_agent = 10'000;  // lookups waiting on one agent
  uint32_t consent_timeout_s = 30;  // how long a callee has to accept
  size_t max_ringing_per_user = 4;  // calls a user may have ringing at once
  size_t max_ringing_per_source = 16;
  // Trickled candidates relayed for a call before the callee accepts (both
  // directions together); beyond either, they are dropped and counted.
  uint32_t max_early_candidates = 32;
  uint32_t max_early_candidate_bytes = 8192;
  // TURN (coturn's REST-API scheme) and the STUN server handed to terminals.
  std::string turn_secret;  // empty: no TURN credentials are minted
  std::vector<proto::SocketAddress> turn_servers;
  uint32_t turn_lifetime_s = 3600;
  std::optional<proto::SocketAddress> stun_server;
  std::string software = "tsunagu-rendezvous/0.1";
  // Voicemail (node.toml [voicemail]; docs/voicemail.md).
  uint64_t voicemail_max_message_bytes = uint64_t{1} << 20;
  uint64_t voicemail_quota_bytes = uint64_t{8} << 20;  // per mailbox
  uint32_t voicemail_max_messages = 100;               // per mailbox
  uint32_t voicemail_retention_days = 30;
  uint64_t voicemail_pending_bytes = uint64_t{64} << 20;  // all uploads in progress, node-wide
  // Accounts (node.toml [accounts]; docs/security.md, "Identities").
  uint32_t removed_id_quarantine_days = 30;  // a removed ID cannot be registered again for this long
  uint32_t account_check_interval_ms = 1000;  // how often idle links are checked against the account epoch; 0: never
  // Directory searches per account (node.toml [directory]): a burst, then one per interval.
  uint32_t directory_scan_burst = 20;
  uint32_t directory_scan_interval_ms = 2000;
  // Voicemail limits that add up (issue 11 §2; docs/security.md).
  uint32_t voicemail_sender_messages_per_day = 50;  // per sender (account or EXT@DOMAIN), UTC day
  uint64_t voicemail_sender_bytes_per_day = uint64_t{32} << 20;
  uint64_t voicemail_domain_quota_bytes = uint64_t{64} << 20;  // all EXT@DOMAIN mailboxes of one domain
  uint64_t voicemail_store_quota_bytes = uint64_t{256} << 20;  // the whole store; keep it well below the map
  uint32_t voicemail_uploads_per_sender = 2;  // uploads in progress per sender, across links
  uint32_t voicemail_upload_idle_s = 30;      // an upload with no chunk for this long is dropped
  uint32_t voicemail_upload_max_s = 300;      // and one not finished this long after it began
  // Where call IDs, call keys and transaction IDs come from. The daemon keeps
  // the cryptographic generator; a test gives a seeded source so that a run
  // repeats byte for byte.
  std::function<void(std::span<std::byte>)> random = [](std::span<std::byte> out) { security::random_bytes(out); };
  // Access cards (node.toml [cards]; docs/cards.md, "Calls on a card"): the
  // issuer keys a card must verify under (the deployment's, read by the
  // daemon), read again through reload_card_issuers (when set) when a card's
  // key is unknown, at most once per card_issuer_reload_s; how long a charged
  // "minute" is; how many calls one card may be in at once.
  std::vector<cards::TrustedIssuer> card_issuers;
  std::function<std::vector<cards::TrustedIssuer>()> reload_card_issuers;
  uint32_t card_issuer_reload_s = 10;
  uint32_t card_debit_interval_s = 60;
  size_t max_calls_per_card = 1;
  // [cards] connection_agent: this node places card calls for holders with no
  // account here (seed 002, claims 6-7; rendezvous/card_agent.hpp).
  bool card_connection_agent = false;
  // [cards] holder_password_required (seed 002, claim 2, [0030]): a card is
  // taken for calls only once its holder replaced the printed password
  // (card_password); card_status and card_password still take the printed one.
  bool card_holder_password_required = false;
  // [cards.areas]: the area a terminal is in by its link's source address,
  // for a terminal that does not know its own (card_area).
  AreaPrefixes card_areas;
  // The issuer's newest signed update (DIR/card_update.cose, `card
  // publish`), asked for each time a card is presented (the daemon reads
  // the file again only when it changed) and decoded when its bytes change;
  // served to a terminal holding an older one.
  std::function<Bytes()> read_card_update;
  // The key rollover statements of `card rekey` (DIR/card_key_rollovers),
  // oldest first, served beside the update so a terminal that kept only an
  // old key can verify an update signed by a newer one.
  std::function<std::vector<Bytes>()> read_card_key_rollovers;
  // Card relays named by host name are resolved by the daemon
  // (take_relay_name_lookups, relay_name_resolved); without a resolver (unit
  // tests that do not ask for one) such relays are skipped. A card call waits
  // for its route's names at most relay_name_wait_ms after its password check.
  bool resolve_relay_names = false;
  uint32_t relay_name_wait_ms = 2000;
};

struct Now {
  uint64_t mono_ms = 0;  // monotonic, for deadlines
  uint64_t unix_s = 0;   // wall clock, for what is shown to people and stored
};

struct NodeAction {
  enum class Kind { send, close } kind = Kind::send;
  LinkId link = 0;
  Bytes message;       // send
  std::string reason;  // close
};

// Slow password work, off the loop: a registration sent as a password
// (hash: new SCRAM credentials), and a login sent as a password (verify:
// against SCRAM credentials or, for an account not migrated yet, scrypt).
struct PasswordJob {
  enum class Kind { verify, hash } kind = Kind::verify;
  uint64_t id = 0;
  std::string password;
  std::string stored_hash;  // verify only
  // hash: the new credentials' iterations; verify of a scrypt hash: when the
  // password matches, SCRAM credentials with these iterations replace it,
  // unless 0 (a card password: it stays a scrypt hash, cards have no SCRAM).
  uint32_t scram_iterations = security::scram::default_iterations;
  // verify, when this password login follows a failed SCRAM proof on the same
  // link for the same ID (a terminal's fallback for accounts not migrated
  // yet): whether this password is the one behind that proof, so the one
  // attempt is not charged to the login limiter twice.
  struct FailedProof {
    Bytes salt;
    uint32_t iterations = 0;
    std::string auth_message;
    Bytes proof;
  };
  std::optional<FailedProof> after_failed_proof;
  // hash: a scrypt hash with these parameters instead of SCRAM credentials
  // (a card password the holder sets: cards have no SCRAM).
  std::optional<security::ScryptParameters> scrypt;
};

struct PasswordJobResult {
  uint64_t id = 0;
  bool verified = false;  // verify
  std::string hash;       // hash; verify: the migrated credentials, if any
  bool same_as_failed_proof = false;  // verify with after_failed_proof
};

// What the daemon's worker threads (and tests) run for a job (node_login.cpp).
PasswordJobResult run_password_job(const PasswordJob& job);

// How a lookup ended, for the metrics (rendezvous/node_metrics.hpp): a small
// fixed set, so a label never carries what a peer sent.
enum class LookupResult : uint8_t { found, offline, not_found, refused, agent_offline, timeout, unavailable, error };
inline constexpr size_t lookup_result_count = static_cast<size_t>(LookupResult::error) + 1;
std::string_view to_string(LookupResult result);
// The result an error code answering a lookup means.
LookupResult lookup_result_of(uint16_t code);

// Why a call ended (by its END-CODE), for the metrics.
enum class CallEndReason : uint8_t { hung_up, cancelled, declined, busy, no_answer, link_lost, refused, media_refused, other };
inline constexpr size_t call_end_reason_count = static_cast<size_t>(CallEndReason::other) + 1;
std::string_view to_string(CallEndReason reason);
CallEndReason call_end_reason(uint16_t end_code);

// Why a login_resume was refused, for the metrics and the audit line's
// reason=: the token's own check (security/resume_token.hpp), then the
// account's generation (revoked), or tokens turned off (disabled).
enum class TokenRefusal : uint8_t { malformed, forged, expired, revoked, disabled };
inline constexpr size_t token_refusal_count = static_cast<size_t>(TokenRefusal::disabled) + 1;
std::string_view to_string(TokenRefusal reason);

struct NodeCounters {
  uint64_t requests = 0;
  uint64_t bad_messages = 0;
  uint64_t logins = 0;
  uint64_t failed_logins = 0;
  uint64_t token_logins = 0;          // of `logins`: by a session-resumption token (login_resume)
  uint64_t token_logins_refused = 0;  // login_resume refused (forged, expired, revoked); the terminal falls back to SCRAM
  uint64_t rate_limited = 0;
  uint64_t lookups = 0;
  uint64_t registrations = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t forwarded_lookups = 0;
  uint64_t forward_timeouts = 0;
  uint64_t calls_offered = 0;
  uint64_t calls_accepted = 0;
  uint64_t voicemails_stored = 0;
  uint64_t voicemails_deleted = 0;
  uint64_t directory_searches = 0;
  uint64_t registrations_rate_limited = 0;  // register refused per source (429)
  uint64_t password_jobs_refused = 0;       // login/register refused: too many hashes in flight (503)
  uint64_t links_refused_node_full = 0;     // link refused: max_links reached
  uint64_t links_refused_per_source = 0;    // link refused: too many not-logged-in links from its source
  uint64_t logins_refused_per_account = 0;  // login refused: the account holds max_links_per_account links
  uint64_t idle_links_closed = 0;           // links closed by idle_timeout_s
  uint64_t voicemails_refused_sender = 0;   // over the sender's daily quota (429)
  uint64_t voicemails_refused_domain = 0;   // over the domain's quota (507)
  uint64_t voicemails_refused_store = 0;    // over the store's quota (507)
  uint64_t uploads_refused_per_sender = 0;  // too many uploads in progress for one sender (429)
  uint64_t uploads_dropped = 0;             // idle or too slow uploads dropped
  uint64_t early_candidates_dropped = 0;    // call candidates over the before-accept limits
  uint64_t logins_limited = 0;              // login refused by the login limiter (429); also in rate_limited
  uint64_t card_calls_admitted = 0;
  uint64_t card_calls_refused = 0;
  uint64_t card_debits = 0;
  // Lookups by how they ended: answered from the node's own accounts
  // (direct), or routed to a LAN agent (forwarded; also agent offline).
  std::array<uint64_t, lookup_result_count> direct_lookups{};
  std::array<uint64_t, lookup_result_count> forwarded_lookup_results{};
  std::array<uint64_t, call_end_reason_count> calls_ended{};
  std::array<uint64_t, token_refusal_count> token_refusals{};  // token_logins_refused by reason
  uint64_t voicemail_bytes_stored = 0;  // bytes of the messages stored since start (deletions not subtracted)
  // Storage failures by kind (index: storage::StoreErrc): requests answered
  // 503 or 507 because a read or write failed, and failed group commits.
  std::array<uint64_t, storage::store_errc_count> storage_errors{};
  std::array<uint64_t, storage::store_errc_count> commit_failures_by_kind{};
};

// One storage failure, for the daemon to log (rate-limited): the core does
// not log. `method` is the request it answered (0 for a group commit, which
// failed `replies_failed` acknowledgements).
struct StorageFault {
  storage::StoreError error;
  uint16_t method = 0;
  bool commit = false;
  size_t replies_failed = 0;
};

// coturn's TURN REST-API credentials: username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username)).
struct TurnCredentials {
  std::string username;
  std::string password;
};
TurnCredentials mint_turn_credentials(std::string_view secret, std::string_view user, uint64_t expiry_unix);

class NodeCore {
 public:
  // Opens the node's other databases in the store's environment; a failure
  // (map full, unreadable environment) is the daemon's reason not to start.
  // `shared_accounts`: accounts and logins live there (cluster mode,
  // docs/cluster.md) instead of in the store; it must outlive the core. The
  // features not on it yet are then refused per request, saying so.
  static Expected<std::unique_ptr<NodeCore>, storage::StoreError> open(AccountStore& store, NodeSettings settings,
                                                                       AccountDirectory* shared_accounts = nullptr);
  // As open(), for tests: a failure to open is kept (open_error()) and the
  // requests that need the missing database are answered 503.
  NodeCore(AccountStore& store, NodeSettings settings, AccountDirectory* shared_accounts = nullptr);
  const std::optional<storage::StoreError>& open_error() const { return open_error_; }
  // Agents' enrolments are read from `agents` (cluster mode: PostgreSQL)
  // instead of the store's AgentRegistry, and agent links are served in
  // cluster mode; it must outlive the core.
  void use_shared_agents(AgentDirectory* agents) { shared_agents_ = agents; }
  // Voicemail is kept in `mailboxes` (cluster mode: PostgreSQL) instead of
  // the store's VoicemailStore; its writes must join `shared_accounts`' turn
  // (the replies wait for that commit). It must outlive the core.
  void use_shared_voicemail(VoicemailBoxes* mailboxes) { shared_voicemail_ = mailboxes; }
  // Access cards are checked and debited in `cards` (cluster mode:
  // PostgreSQL) instead of the store's CardLedger; its writes must join
  // `shared_accounts`' turn. It must outlive the core.
  void use_shared_cards(CardLedgerStore* cards) { shared_cards_ = cards; }

  void link_opened(LinkId link, const proto::SocketAddress& observed, Now now);
  // A link on the agent listener finished TLS with a client certificate from
  // the deployment CA whose common name is `agent_name`.
  void agent_link_ready(LinkId link, const std::string& agent_name, Now now);
  void link_closed(LinkId link, Now now);
  void message(LinkId link, ByteView bytes, Now now);
  void password_job_done(const PasswordJobResult& result, Now now);
  void tick(Now now);
  // Tells every terminal link the node is going away (a notice each).
  void announce_shutdown();
  void commit_turn();

  // Where the audit events go (docs/operator.md, "Audit log"): logins,
  // registrations, calls, agent links, voicemail. An event about a durable
  // write is recorded once the turn's commit succeeded (or with
  // result=storage_error when it failed). The sink must outlive the core.
  void set_audit_sink(audit::AuditSink& sink) { audit_ = &sink; }
  // A reload (SIGHUP; node_reload.cpp): limits and policy from a re-read
  // node.toml apply from now on, links and state stay. Returns the settings
  // that changed but apply only at the next start (they keep their old values).
  std::vector<std::string> reload_settings(NodeSettings next);
  const NodeSettings& settings() const { return settings_; }
  // An event from outside the core (the web API's admin endpoints), through the same sink.
  void record_audit(const audit::AuditEvent& event) { audit_->record(event); }

  std::vector<NodeAction> take_actions() { return std::move(actions_); }
  std::vector<PasswordJob> take_password_jobs() { return std::move(password_jobs_); }
  std::vector<StorageFault> take_storage_faults() { return std::move(storage_faults_); }
  // Card relays' host names to resolve (off the loop), and each one's answer:
  // its addresses, none when it failed. Returns true for a name's first
  // failure since it last resolved, for the daemon to log once.
  std::vector<std::string> take_relay_name_lookups() { return std::move(relay_name_lookups_); }
  bool relay_name_resolved(const std::string& host, std::vector<proto::SocketAddress> addresses, Now now);
  bool has_work() const {
    return !actions_.empty() || !password_jobs_.empty() || !after_commit_.empty() || !relay_name_lookups_.empty();
  }
  std::optional<uint64_t> next_deadline() const;

  const PresenceTable& presence() const { return presence_; }
  // What changed for the web API's event sockets since the last take: whose
  // presence (logged in, ended, went into or out of a call) and whose mailbox
  // (a message stored, in this turn's write). Recorded only while watched,
  // so nothing piles up without a reader.
  void watch_changes(bool on) {
    watch_changes_ = on;
    if (!on) presence_changes_.clear(), mailbox_changes_.clear();
  }
  std::vector<std::string> take_presence_changes() { return std::move(presence_changes_); }
  std::vector<std::string> take_mailbox_changes() { return std::move(mailbox_changes_); }
  const NodeCounters& counters() const { return counters_; }
  size_t link_count() const { return links_.size(); }
  // For the operator's view (the web API's admin endpoints); no rules here.
  // The names of the agents whose links said hello, in name order.
  std::vector<std::string> linked_agents() const;
  size_t calls_in_progress() const { return calls_->size(); }
  struct CallView {
    std::string caller, callee;
    std::string_view state;  // "preparing", "ringing", "accepted"
    bool via_agent = false;  // the callee is a LAN extension rung through its agent
  };
  // The calls now, caller then callee order; no keys or call IDs.
  std::vector<CallView> calls_view() const;
  size_t uploads_in_progress_bytes() const { return uploads_->pending_bytes(); }
  // Links on the agent listener (counted on each call: for a metrics scrape).
  size_t agent_link_count() const;
  // What the voicemail store holds now, read in a transaction of its own (a
  // scan of every message header: for a metrics scrape, between turns).
  Expected<VoicemailStore::Usage, storage::StoreError> voicemail_usage();

  // Browser calls (node_browser.cpp). A web session's logged-in query link
  // becomes the user's presence (rung like a terminal, its party speaking the
  // WebRTC media profile) while its page says it takes calls; an error text
  // for the page when it cannot (not logged in, a terminal holds the
  // presence). drop_web_presence() turns it back into a query link (nothing
  // when it held no presence) and, with `end_calls` (the page went away), ends
  // every call the link is a party of, placed or answered.
  Expected<void, std::string> take_web_presence(LinkId link, Now now);
  void drop_web_presence(LinkId link, bool end_calls, Now now);

  // Cluster mode (node/cluster_relay.hpp). While watched, the presence
  // a terminal link takes (at login), keeps (each keepalive) and loses, and
  // the domains and number prefixes an agent link holds, are recorded for the
  // relay to write to Redis (an agent's release follows its link's close,
  // seen by the relay).
  struct ClusterPresenceChange {
    enum class Kind : uint8_t { linked, refreshed, ended } kind = Kind::linked;
    bool agent = false;  // holder is a domain (or number prefix) held by agent link `link`, else a user ID
    std::string holder;
    LinkId link = 0;
    bool number_prefix = false;  // with agent: holder is a number prefix, not a domain
  };
  void watch_cluster_presence(bool on) {
    watch_cluster_ = on;
    if (!on) cluster_changes_.clear();
  }
  std::vector<ClusterPresenceChange> take_cluster_presence_changes() { return std::move(cluster_changes_); }
  // A terminal linked to another node, logged in there as `user`: its requests
  // for links here come over the bus and are handled as a query link's.
  void remote_link_opened(LinkId link, const std::string& user, const proto::SocketAddress& observed, Now now);
  // Another node took `user`'s presence (a newer login there): the link
  // holding it here is told it was logged in elsewhere and closed.
  void presence_taken_elsewhere(const std::string& user, Now now);
  // The user a link is logged in as (presence or query), if any.
  std::optional<std::string> link_user(LinkId link) const;
  // Whether a link of this node answers for `user_id`: the user's presence, or
  // the connected agent holding its domain or number prefix.
  bool held_here(const std::string& user_id) const;

 private:
  // From settings_.random, never from the generator directly (see NodeSettings::random).
  void fill_random(std::span<std::byte> out) { settings_.random(out); }
  Bytes random_bytes(size_t count) {
    Bytes out(count);
    fill_random(out);
    return out;
  }
  proto::TransactionId fresh_transaction() {
    proto::TransactionId id;
    fill_random(id.bytes);
    return id;
  }

  // A SCRAM login between its two rounds (node_login.cpp): what login_begin
  // answered, kept on the link for the login request that follows.
  struct ScramExchange {
    std::string user_id;
    std::string client_first_bare;
    std::string server_first;
    std::string nonce;  // the client's and the node's together
    security::scram::ServerCredentials credentials;  // a dummy for an unknown or not yet migrated ID
    bool account_exists = false;
    uint64_t generation = 0;
  };
  // Fields most links never fill, or fill only while logging in, are
  // HeapOptional: a pointer each on the 18,000 idle links of benchmark 4.
  struct LinkState {
    HeapOptional<ScramExchange> scram;
    // The last SCRAM proof that failed on this link, with its user ID: a
    // password login for that ID next is the terminal's fallback (PasswordJob).
    HeapOptional<std::pair<std::string, PasswordJob::FailedProof>> failed_proof;
    proto::SocketAddress observed;
    std::optional<std::string> user;  // set once logged in; written only by set_link_user (node_limits.cpp)
    uint32_t role = 0;
    uint64_t opened_ms = 0;
    uint32_t bad_messages = 0;
    bool login_pending = false;
    HeapOptional<std::string> agent_name;  // agent links: the certificate's name
    bool agent_ready = false;               // agent_hello accepted
    uint64_t account_generation = 0;  // the account's generation at login
    std::string prelogin_source;  // counted in prelogin_by_source_ until it logs in (node_limits.cpp)
    bool refused = false;         // refused at link_opened; closed, its messages ignored
    uint64_t last_message_ms = 0;
    uint32_t media_profile = 0;  // proto::media_profile of a presence link: webrtc for a browser's
    // A connection agent's caller with no login (node_cards.cpp): the caller
    // ID of its card ("card-<card ID>") and the card's serial, set when the
    // link's first card call was admitted.
    HeapOptional<std::string> card_holder;
    std::optional<uint64_t> card_holder_serial;
  };
  // Who a link calls as: its account, or a connection agent's card holder; nullptr: neither.
  static const std::string* caller_of(const LinkState& state) {
    return state.user ? &*state.user : state.card_holder ? &*state.card_holder : nullptr;
  }
  struct PendingAuth {
    enum class Purpose { login, register_user } purpose = Purpose::login;
    LinkId link = 0;
    proto::TransactionId transaction;
    std::string user_id;
    std::string display_name;
    std::vector<proto::SocketAddress> reported;
    uint32_t role = 0;
    bool account_exists = false;
    uint64_t generation = 0;  // of the account, when it was read for this login
    std::string server_final;  // a SCRAM login: what its success carries
    std::string stored_hash;   // a password login: what it was checked against (a migration replaces only that)
    bool charge_if_new_password = false;  // a fallback after a failed proof: charged only for another password
    bool client_credentials = false;  // a registration whose SCRAM credentials the client made: no password here
    std::string_view method;  // "token" for login_resume (the audit line's method=); empty otherwise

    static PendingAuth registration(LinkId link, const proto::Message& request, std::string user_id,
                                    std::string display_name) {
      PendingAuth pending;
      pending.purpose = Purpose::register_user;
      pending.link = link;
      pending.transaction = request.transaction_id;
      pending.user_id = std::move(user_id);
      pending.display_name = std::move(display_name);
      return pending;
    }
  };
  struct PendingReply {
    LinkId link = 0;
    Bytes on_commit;
    // On a failed commit: an error answer to (method, transaction), 503 or
    // 507 by the failure's kind, its reason ending in `not_done`.
    uint16_t method = 0;
    proto::TransactionId transaction;
    std::string not_done;
  };

  struct Credentials {
    std::string user_id;
    std::string_view password;  // points into the request; empty for a register with scram_credentials
    std::string_view scram_credentials;  // register only: what the client derived (SCRAM-CREDENTIALS)
  };
  // USER-ID and PASSWORD of a register or login request, checked; nullopt
  // once the error has been answered.
  std::optional<Credentials> read_credentials(LinkId link, const proto::Message& request, size_t min_password);
  void handle_request(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_register(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_login(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // SCRAM (node_login.cpp): login_begin answers the salt and iterations; a
  // login carrying SCRAM-CLIENT-FINAL is checked at once (a few HMACs).
  void handle_login_begin(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_scram_login(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // login_resume (node_login.cpp): USER-ID + RESUME-TOKEN, checked at once
  // (one HMAC) against the account's generation; refused: 401, no charge.
  void handle_token_login(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // A fresh token for a login that succeeded, added to its answer.
  void add_resume_token(proto::MessageBuilder& ok, const std::string& user_id, uint64_t generation, Now now);
  const Bytes& resume_key();
  // For an ID without SCRAM credentials: a salt stable per ID (HMAC of the
  // store's secret and the ID) and keys nothing matches.
  security::scram::ServerCredentials dummy_credentials(const std::string& user_id);
  // A password login of a scrypt account succeeded: its SCRAM credentials
  // replace the scrypt hash in this turn's write (same generation).
  void migrate_password(const PendingAuth& pending, const std::string& credentials);
  // true (and 429 answered, counted, audited) when the login limiter holds `user_id` back from this source.
  bool login_limited(LinkId link, const LinkState& state, const proto::Message& request, const std::string& user_id,
                     Now now);
  // The account (or none) in this turn's read; nullopt once a storage error was answered.
  std::optional<std::optional<Account>> find_account(LinkId link, const proto::Message& request,
                                                     const std::string& user_id);
  // A register carrying SCRAM-CREDENTIALS (the browser derives them): checked
  // (form, iterations >= scram_iterations) and stored, without a password job.
  void register_with_credentials(LinkId link, const proto::Message& request, const std::string& user_id,
                                 const std::string& display_name, std::string_view encoded, Now now);
  // REPORTED-ADDRESS* and LINK-ROLE of a login request into `pending`; false once answered 400.
  bool read_login_details(LinkId link, const proto::Message& request, PendingAuth& pending);
  void handle_keepalive(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_logout(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_lookup(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_agent_hello(LinkId link, LinkState& state, const proto::Message& request);
  void handle_agent_response(LinkId link, const proto::Message& response, Now now);
  // Where a routed ID (EXT@DOMAIN, +NUMBER) goes (forward_table.hpp).
  Route find_route(const std::string& user_id);
  // true when the lookup was forwarded or answered for a routed ID.
  bool route_lookup(LinkId link, LinkState& state, const proto::Message& request, const std::string& user_id,
                    Now now);
  // Asks `agent` about `user_id` on behalf of `caller_id` (a forwarded lookup)
  // for the request `request` on `link`; its answer, or the timeout, goes to
  // the request's method (`held` is the request's bytes when it is handled
  // again on the answer). false when the agent is away or has too many
  // questions waiting: answered 503.
  bool send_forward(LinkId link, const proto::Message& request, LinkId agent, const std::string& user_id,
                    const std::string& caller_id, Now now, Bytes held = {});
  void answer_forward(const PendingForward& forward, uint16_t code, std::string_view reason);
  void drop_agent_routes(LinkId link, Now now);
  // Calls (node_calls.cpp).
  void handle_turn_credentials(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // `card`: the call is paid from an admitted card (node_cards.cpp); a
  // request carrying CARD is checked first and handled again with it.
  struct CardUse;
  void handle_call(LinkId link, LinkState& state, const proto::Message& request, Now now,
                   const CardUse* card = nullptr);
  void handle_hangup(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_call_candidate(LinkId link, LinkState& state, const proto::Message& indication);
  void handle_call_path(LinkId link, LinkState& state, const proto::Message& indication);  // node_call_path.cpp
  void handle_ring_answer(LinkId link, const proto::Message& response, Now now);
  void add_stun_attribute(proto::MessageBuilder& builder);
  // servers: the TURN servers to hand out; nullptr or empty: [turn] servers.
  void add_turn_attributes(proto::MessageBuilder& builder, const std::string& user, Now now,
                           const std::vector<proto::SocketAddress>* servers = nullptr);
  struct CallTarget {
    LinkId link = 0;
    bool via_agent = false;
    bool engaged = false;  // in a call already (call waiting)
  };
  // Whether `callee` can be rung now; replies the refusal and returns nothing when not.
  std::optional<CallTarget> reach_callee(LinkId link, LinkState& state, const proto::Message& request,
                                         const std::string& callee);
  void ring_callee(LinkId link, const proto::Message& request, Call& call, const CallTarget& target,
                   std::string_view offer, Now now);
  void end_call(const std::string& call_id, uint16_t code, std::string_view reason, std::optional<LinkId> tell_not);
  void send_call_event(LinkId link, const Call& call, uint32_t state, uint16_t code, std::string_view reason);
  void calls_link_closed(LinkId link);
  void ring_expired(const std::string& call_id);
  bool user_in_accepted_call(const std::string& user) const;
  // Access cards (node_cards.cpp): a call (or card_status) carrying CARD and
  // CARD-PASSWORD is checked (signature, ledger, revocation, units, calls in
  // progress) at once and the password off the loop, then handled; an
  // accepted card call is debited at the start of each period, in the turn's
  // write transaction, and ended when the card cannot pay.
  struct CardUse {
    uint64_t serial = 0;
    cards::AccessPoint route;
    uint64_t units_left = 0;
    Bytes issuer_key;          // the key the card verified under (CARD-ISSUER-KEY)
    bool send_update = false;  // the terminal holds an older issuer update than the node
    cards::CardId card_id;     // a connection agent's caller ID is made from it
    int64_t password_set_at = 0;  // when the holder set the card's password; 0: the printed one is in force
  };
  struct PendingCardCheck {
    LinkId link = 0;
    Bytes request;  // the request's bytes, handled again once the password is checked
    uint64_t serial = 0;
    bool new_password_hash = false;  // card_password: the job hashed the new password (the current was checked)
    std::vector<std::string> relay_names;  // the route's relay host names being resolved for the call
    bool relay_names_waited = false;       // resumed after waiting for them: not held again
  };
  struct CardCallState {
    uint64_t serial = 0;
    uint64_t number = 0;  // CardCallTable's key
    LinkId caller_link = 0;
    cards::AccessPoint route;
    std::vector<proto::SocketAddress> turn_servers;  // the route's turn: relays (UDP; names as resolved)
    std::optional<cards::CallMeter> meter;  // from the accept; refers to `route`
  };
  void begin_card_check(LinkId link, LinkState& state, const proto::Message& request, Now now);
  bool card_link_may_ask(const LinkState& state, const proto::Message& request) const;
  void become_card_holder(LinkId link, LinkState& state, const CardUse& card);
  void handle_card_area(LinkId link, const LinkState& state, const proto::Message& request);
  // The newest update read (read_card_update), and
  // CARD-UPDATE added to `reply` when `request`'s CARD-UPDATE-VERSION is older.
  void refresh_card_update(Now now);
  // Reads the issuer keys again (reload_card_issuers), at most once per
  // card_issuer_reload_s; whether it did.
  bool reload_card_issuers(Now now);
  void add_card_update(proto::MessageBuilder& reply, const proto::Message& request) const;
  void add_served_update(proto::MessageBuilder& message) const;
  // true when the job was a card check (and it was handled).
  bool card_password_checked(const PasswordJobResult& result, Now now);
  // A card call whose password was checked goes on once its route's relay
  // names resolved, or relay_name_wait_ms later.
  void resume_card_check(uint64_t job, Now now);
  void store_holder_card_password(const PendingCardCheck& pending, const proto::Message& request,
                                  const std::string& hash, Now now);
  // The card decoded and checked against the ledger and the calls in
  // progress; refuses (answer and audit) and returns nothing when refused.
  std::optional<CardUse> check_card(LinkId link, const LinkState& state, const proto::Message& request,
                                    std::optional<bool> password_ok, Now now, uint64_t* serial_out = nullptr);
  void refuse_card(LinkId link, const LinkState& state, const proto::Message& request, const CardDecision& decision,
                   uint64_t serial, std::string_view sources);
  void card_call_placed(const Call& call, const CardUse& card);
  void card_call_accepted(const Call& call, Now now);
  void card_call_ended(const std::string& call_id);
  // The TURN servers of a card call's route (its turn: relays over UDP, by IP
  // literal or by a name resolved), for the caller; nullptr when the call is
  // not on a card or the route has none (then the node's own [turn] servers).
  const std::vector<proto::SocketAddress>* card_turn_servers(const std::string& call_id) const;
  std::vector<proto::SocketAddress> route_turn_servers(const cards::AccessPoint& route) const;
  void debit_card_call(const std::string& call_id, Now now);
  void send_card_units(LinkId link, const std::string& call_id, uint64_t units_left, bool warning, bool after_commit,
                       bool with_update = false);
  void audit_card(std::string_view result, uint64_t serial, const LinkState& state, std::string_view reason = {},
                  std::string_view extra_key = {}, std::string extra_value = {});
  // Browser calls (node_browser.cpp): each party's media profile into the call and the messages.
  void note_media_profiles(Call& call, const proto::Message& request, const CallTarget& target);
  void add_other_profile(proto::MessageBuilder& builder, const Call& call, LinkId party) const;
  // A browser's ring refusals are the node's own (its web API wrote the reason): passed on as written.
  bool own_ring_refusal(LinkId callee_link) const;
  // Directory and profiles (node_directory.cpp).
  void handle_directory_search(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void handle_directory_categories(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // true when the account's directory scans are used up: answered 429 with RETRY-AFTER.
  bool refuse_directory_scan(LinkId link, const proto::Message& request, const std::string& user, Now now);
  void handle_profile(LinkId link, LinkState& state, const proto::Message& request);
  // Voicemail (node_voicemail.cpp).
  void handle_voicemail(LinkId link, LinkState& state, const proto::Message& request, Now now);
  // An agent link reading (and acknowledging) the mailbox of an extension it
  // routes (USER-ID = EXT@DOMAIN), to deliver it to the LAN terminal.
  void handle_agent_voicemail(LinkId link, const proto::Message& request, Now now);
  void voicemail_begin(LinkId link, const std::string& caller, const proto::Message& request, Now now,
                       bool policy_checked = false);
  // Asks the agent of EXT@DOMAIN whether `caller` may reach it (a forwarded lookup).
  void ask_edge_policy(LinkId link, const proto::Message& request, LinkId agent, const std::string& caller,
                       const std::string& callee, Now now);
  void edge_policy_answered(const PendingForward& forward, const proto::Message& response, Now now);
  void voicemail_chunk(LinkId link, const proto::Message& request, Now now);
  void voicemail_finish(LinkId link, const proto::Message& request, Now now);
  void voicemail_list(LinkId link, const std::string& owner, const proto::Message& request, Now now);
  void voicemail_fetch(LinkId link, const std::string& owner, const proto::Message& request, Now now);
  void voicemail_delete(LinkId link, const std::string& owner, const proto::Message& request);
  void voicemail_link_closed(LinkId link);
  // Drops idle and too slow uploads (every tick) and keeps the sweep's deadline.
  void expire_uploads(Now now);
  // Deletes messages past retention (its deadline fell due).
  void sweep_voicemail(Now now);
  uint32_t voicemail_waiting_flag(const std::string& user);
  // Identities (node_identity.cpp): IDs inside an agent's route are never
  // accounts, and a logged-in link lasts only as long as its account does.
  // true when `user_id` lies in an enrolled domain or prefix: answered 403.
  bool refuse_agent_id(LinkId link, const proto::Message& request, const std::string& user_id);
  // false when the link's login no longer holds (the request was answered
  // and the link is being closed).
  bool session_still_valid(LinkId link, LinkState& state, const proto::Message& request, Now now);
  void end_session(LinkId link, LinkState& state, uint32_t code, std::string_view reason, Now now);
  // true when the ID was removed less than the quarantine period ago: answered 409.
  bool refuse_removed_id(LinkId link, const proto::Message& request, const std::string& user_id, Now now);
  // false when the link's account is gone or its generation moved on.
  bool account_holds(const LinkState& state);
  // Every account_check_interval_ms (its deadline fell due): when the account
  // epoch moved (a removal or password change, maybe by the admin command in
  // another process), ends the login of every link whose account no longer holds.
  void check_accounts(Now now);
  void finish_login(const PendingAuth& pending, bool verified, Now now);
  // Limits (node_limits.cpp).
  // 429 with RETRY-AFTER.
  void reply_retry_after(LinkId link, const proto::Message& request, uint32_t wait_s, std::string_view reason);
  // true (and 503 answered) when password_jobs in flight are at the cap.
  bool password_work_full(LinkId link, const proto::Message& request);
  // Called from link_opened: the node-wide and per-source caps; a refused
  // link gets a notice and a close.
  void admit_link(LinkId link, LinkState& state, Now now);
  // The link logged in, became an agent, or closed: no longer pre-login.
  void forward_expiry_queued(const proto::TransactionId& id, uint64_t when_ms);
  void expire_forwards(Now now);
  proto::TransactionId next_forward_transaction();
  // Every change of a link's user goes through here (account_links_ counts them).
  void set_link_user(LinkState& state, std::optional<std::string> user);
  void end_prelogin(LinkState& state);
  // The link closed: forget what the limits kept for it.
  void forget_link_limits(LinkId link, LinkState& state);
  // true (and 503 answered) when `user` already holds max_links_per_account links besides `link`
  // (account_links_, not a scan of the links).
  bool account_links_full(LinkId link, const std::string& user, uint16_t method,
                          const proto::TransactionId& transaction);
  // The link's idle check fell due: closes it if idle, else checks again later.
  void check_idle(LinkId link, Now now);
  // voicemail_begin's limits beyond the mailbox's own: per sender (uploads in
  // progress, messages and bytes per day), per domain, the whole store.
  // true when refused (and answered).
  bool voicemail_limits_refuse(LinkId link, const proto::Message& request, const std::string& caller,
                               const std::string& callee, uint64_t size, Now now);
  // The domain and store quotas again inside the write (finish); true when refused.
  bool voicemail_store_full(LinkId link, const proto::Message& request, const std::string& callee, uint64_t size);
  void charge_voicemail_sender(const std::string& caller, uint64_t size, Now now);
  // Charges a candidate of `size` bytes relayed for `call`; false (dropped)
  // when the call is not accepted yet and over the early limits.
  bool admit_candidate(Call& call, size_t size);
  void finish_register(const PendingAuth& pending, const std::string& hash, Now now);

  void send(LinkId link, Bytes message);
  void close(LinkId link, std::string reason);
  // Audit events (node_audit.cpp).
  void audit_after_commit(audit::AuditEvent event) { audit_after_commit_.push_back(std::move(event)); }
  void release_audit(bool committed);
  void audit_login(std::string_view result, const std::string& user, const proto::SocketAddress& source,
                   std::string_view role = {}, std::string_view method = {});
  void audit_call(std::string_view what, const Call& call, std::string_view extra_key = {},
                  std::string extra_value = {});
  void audit_call_ended(const Call& call, uint16_t code);
  void audit_agent_link(std::string_view state, LinkId link, const LinkState& link_state);
  void notice(LinkId link, uint32_t code, std::string_view reason);
  void reply_error(LinkId link, const proto::Message& request, uint16_t code, std::string_view reason = {});
  void reply_error(LinkId link, uint16_t method, const proto::TransactionId& id, uint16_t code,
                   std::string_view reason = {});
  // The one answer to a storage failure: 507 when storage is full (map or
  // disk), else 503; counted by kind and queued for the daemon's log.
  void reply_storage_error(LinkId link, const proto::Message& request, const storage::StoreError& error);
  void reply_storage_error(LinkId link, uint16_t method, const proto::TransactionId& id,
                           const storage::StoreError& error);
  // `on_commit` once this turn's write transaction is durable; a storage
  // error answer (saying `not_done`) if the commit fails.
  void reply_after_commit(LinkId link, const proto::Message& request, Bytes on_commit, std::string_view not_done = {});
  void reply_after_commit(LinkId link, uint16_t method, const proto::TransactionId& id, Bytes on_commit,
                          std::string_view not_done = {});
  Bytes storage_error_message(uint16_t method, const proto::TransactionId& id, const storage::StoreError& error,
                              std::string_view not_done) const;
  void record_storage_fault(StorageFault fault);
  // A storage failure no request is waiting on (a sweep, a background
  // check): counted and logged all the same.
  void note_storage_error(const storage::StoreError& error);
  proto::MessageBuilder success(const proto::Message& request);
  // An indication the node starts: a fresh transaction ID (written to `id`
  // when the caller must name it again, as reply_after_commit does) and the
  // protocol version.
  proto::MessageBuilder indication(uint16_t method, proto::TransactionId* id = nullptr);
  void presence_ended(const std::string& user, Now now);
  void presence_changed(const std::string& user) {
    if (watch_changes_) presence_changes_.push_back(user);
  }
  storage::Transaction* read_txn();
  storage::Transaction* write_txn();
  // The turn's replies and audit events, released once every store holding
  // the turn's writes committed (commit_turn).
  void release_after_commit();
  // Cluster mode: a request for a feature whose state is not shared yet is
  // answered 501 naming it (docs/cluster.md); true when refused.
  bool refuse_unshared_feature(LinkId link, const proto::Message& request);

  // The embedded default's account directory: AccountStore in this turn's LMDB transaction.
  class TurnAccounts final : public AccountDirectory {
   public:
    explicit TurnAccounts(NodeCore& core) : core_(core) {}
    Expected<std::optional<Account>, StoreError> find(std::string_view user_id) override;
    Expected<std::optional<uint64_t>, StoreError> generation(std::string_view user_id) override;
    Expected<std::optional<uint64_t>, StoreError> removed_at(std::string_view user_id) override;
    Expected<uint64_t, StoreError> epoch() override;
    Expected<std::optional<LoginRecord>, StoreError> last_login(std::string_view user_id) override;
    Expected<bool, StoreError> create(const Account& account) override;
    Expected<void, StoreError> update(const Account& account) override;
    Expected<void, StoreError> record_login(std::string_view user_id, const LoginRecord& record) override;
    Expected<std::vector<Account>, StoreError> list_published(std::string_view after, size_t limit) override;
    const Bytes& dummy_salt_key() const override { return core_.store_.dummy_salt_key(); }

   private:
    NodeCore& core_;
  };

  AccountStore& store_;
  TurnAccounts turn_accounts_{*this};
  AccountDirectory& accounts_;
  bool cluster_mode_ = false;
  AgentDirectory* shared_agents_ = nullptr;  // null: the store's AgentRegistry
  NodeSettings settings_;
  PresenceTable presence_;
  bool watch_changes_ = false;
  bool watch_cluster_ = false;
  std::vector<ClusterPresenceChange> cluster_changes_;
  void cluster_change(ClusterPresenceChange::Kind kind, bool agent, std::string holder, LinkId link,
                      bool number_prefix = false) {
    if (watch_cluster_) cluster_changes_.push_back({kind, agent, std::move(holder), link, number_prefix});
  }
  std::vector<std::string> presence_changes_;
  std::vector<std::string> mailbox_changes_;
  LoginLimiter limiter_;
  DirectoryScanLimiter scan_limiter_;
  std::unordered_map<LinkId, LinkState> links_;
  // The bytes of the message being handled, for a request that waits on an
  // agent and is handled again when it answers (ask_edge_policy).
  ByteView current_message_;
  // Login, ring, forward, idle-check, upload-sweep, retention-sweep and
  // account-check deadlines (deadline_queue.hpp; which wake the node: next_deadline()).
  DeadlineQueue deadlines_;
  std::unordered_map<std::string, size_t> prelogin_by_source_;
  std::unordered_map<uint64_t, PendingAuth> pending_auth_;
  std::unordered_map<std::string, uint64_t> last_seen_unix_;
  std::optional<AgentRegistry> registry_;
  // The agent registry as the route table's storage, through this turn's transaction.
  class RegistryRoutes final : public EnrolledRoutes {
   public:
    explicit RegistryRoutes(NodeCore& core) : core_(core) {}
    Expected<std::optional<std::string>, storage::StoreError> route_of(const std::string& user_id) override;

   private:
    NodeCore& core_;
  };
  RegistryRoutes enrolled_routes_{*this};
  uint64_t known_account_epoch_ = 0;
  std::unique_ptr<RouteTable> routes_ = std::make_unique<LocalRouteTable>();
  std::unique_ptr<ForwardTable> forwards_ = std::make_unique<LocalForwardTable>();
  std::unique_ptr<CallTable> calls_ = std::make_unique<LocalCallTable>();
  std::optional<VoicemailStore> voicemail_;
  // The embedded default's mailboxes: VoicemailStore in this turn's LMDB transaction.
  class TurnVoicemail final : public VoicemailBoxes {
   public:
    explicit TurnVoicemail(NodeCore& core) : core_(core) {}
    Expected<Usage, StoreError> usage(std::string_view mailbox) override;
    Expected<Totals, StoreError> totals(std::string_view domain) override;
    Expected<std::vector<proto::VoicemailEntry>, StoreError> list(std::string_view mailbox, uint64_t after,
                                                                  size_t limit) override;
    Expected<std::optional<proto::VoicemailEntry>, StoreError> find(std::string_view mailbox, uint64_t id) override;
    Expected<std::optional<Bytes>, StoreError> read(std::string_view mailbox, uint64_t id, uint64_t offset,
                                                    size_t max) override;
    Expected<uint64_t, StoreError> add(std::string_view mailbox, std::string_view caller, uint64_t time,
                                       ByteView data) override;
    Expected<bool, StoreError> remove(std::string_view mailbox, uint64_t id) override;
    Expected<size_t, StoreError> expire(uint64_t older_than, size_t max) override;

   private:
    NodeCore& core_;
  };
  TurnVoicemail turn_voicemail_{*this};
  VoicemailBoxes* shared_voicemail_ = nullptr;  // null: turn_voicemail_
  VoicemailBoxes& mailboxes() { return shared_voicemail_ != nullptr ? *shared_voicemail_ : turn_voicemail_; }
  std::unique_ptr<UploadTable> uploads_;
  struct SenderDay {
    uint64_t day = 0;  // Unix days
    uint64_t messages = 0, bytes = 0;
  };
  std::unordered_map<std::string, SenderDay> voicemail_senders_;
  // Access cards (node_cards.cpp).
  std::optional<CardLedger> card_ledger_;
  // The embedded default's ledger: card_ledger_ in this turn's LMDB transaction.
  class TurnCardLedger final : public CardLedgerStore {
   public:
    explicit TurnCardLedger(NodeCore& core) : core_(core) {}
    Expected<std::optional<CardAccount>, StoreError> find(uint64_t serial) override;
    Expected<LedgerResult, StoreError> debit(uint64_t serial, uint64_t units, int64_t now,
                                             std::string_view note) override;
    Expected<LedgerResult, StoreError> set_password(uint64_t serial, std::string password_hash, int64_t now,
                                                    std::string_view note) override;

   private:
    NodeCore& core_;
  };
  TurnCardLedger turn_cards_{*this};
  CardLedgerStore* shared_cards_ = nullptr;  // null: turn_cards_
  CardLedgerStore& cards() { return shared_cards_ != nullptr ? *shared_cards_ : turn_cards_; }
  std::unordered_map<uint64_t, PendingCardCheck> pending_card_checks_;
  RelayNameCache relay_names_;
  std::vector<std::string> relay_name_lookups_;
  std::unordered_map<uint64_t, PasswordJobResult> card_checks_awaiting_names_;  // by job ID
  std::unordered_map<std::string, std::unique_ptr<CardCallState>> card_calls_;  // by call ID
  CardCallTable card_call_table_;
  uint64_t next_card_call_number_ = 1;
  uint64_t card_issuers_reloaded_ms_ = 0;  // today's stored messages per sender
  struct ServedCardUpdate {
    Bytes bytes;
    cards::CardUpdate update;
    std::vector<Bytes> key_rollovers;  // read with it: how a terminal of an older key reaches its signer
  };
  std::optional<ServedCardUpdate> card_update_;
  Bytes card_update_seen_;  // the file's bytes last read: decoded only when they change
  Bytes resume_key_;
  // Forwarded lookups' timeouts in sending order, and their transaction IDs
  // (node_core.cpp, forward_expiry_queued).
  std::deque<std::pair<uint64_t, proto::TransactionId>> forward_expiries_;
  uint32_t forward_id_prefix_ = 0;
  uint64_t forward_counter_ = 0;
  // Links logged in per user ID; kept by set_link_user, the only writer of LinkState::user.
  std::unordered_map<std::string, uint32_t> account_links_;  // derived from the account store's secret on first use (resume_key())
  uint64_t next_job_id_ = 1;
  std::vector<NodeAction> actions_;
  std::vector<PasswordJob> password_jobs_;
  std::vector<PendingReply> after_commit_;
  std::optional<storage::Transaction> write_txn_;
  std::optional<storage::Transaction> read_txn_;
  // Why read_txn()/write_txn() last returned nullptr.
  storage::StoreError txn_error_;
  // The first storage failure of this turn: a poisoned write transaction's
  // commit fails with `poisoned`, and this says why.
  std::optional<storage::StoreError> turn_error_;
  std::optional<storage::StoreError> open_error_;
  std::vector<StorageFault> storage_faults_;
  NodeCounters counters_;
  audit::NullAuditSink no_audit_;
  audit::AuditSink* audit_ = &no_audit_;
  std::vector<audit::AuditEvent> audit_after_commit_;
  // The time of the input being handled, for what the audit events measure
  // (a call's duration) in handlers that are not given it.
  Now now_;
};

}  // namespace tsunagu::rendezvous
