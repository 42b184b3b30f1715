// The node's JSON web API (docs/web.md) over NodeCore, without sockets: the
// HTTPS server (web/) hands it parsed requests and writes what it answers.
//
// No second implementation of the rules: a web session is one ordinary
// NodeCore link (role "query", so a browser creates no presence) and every
// caller endpoint is the same protocol request a terminal sends, fed to
// core.message(). The core's answers come back through core_action() (the
// daemon routes there every action whose link owns_link() says is ours),
// matched by transaction ID to the waiting HTTP request and turned into JSON.
// Login therefore goes through the core's limiter and password jobs: handle()
// answers through a callback, maybe after the password job ran.
//
// Admin endpoints read the store and use rendezvous/account_admin.hpp, the
// same functions as `tsunagu-rendezvous user ...`; the card ledger's pages
// read rendezvous/card_ledger.hpp as `tsunagu-rendezvous card show` does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/stun_message.hpp"
#include "rendezvous/account_admin.hpp"
#include "rendezvous/browser_signalling.hpp"
#include "rendezvous/account_store.hpp"
#include "rendezvous/agent_registry.hpp"
#include "rendezvous/card_ledger.hpp"
#include "rendezvous/node_core.hpp"
#include "rendezvous/voicemail_boxes.hpp"
#include "rendezvous/voicemail_store.hpp"
#include "security/passwords.hpp"
#include "security/scram.hpp"
#include "web/http_message.hpp"

namespace tsunagu::rendezvous {

struct WebApiSettings {
  uint32_t session_idle_s = 1800;  // a session with no request for this long ends
  uint32_t session_max_s = 43200;  // and every session this long after its login
  size_t max_sessions = 10000;
  bool secure_cookie = true;  // false only for plain-HTTP tests: the cookie then lacks "Secure"
  // A session's link sends a keepalive this often so the core's idle timeout
  // (NodeSettings::idle_timeout_s, which must be longer) keeps it open.
  uint32_t link_keepalive_s = 30;
  size_t max_json_body = 16 * 1024;  // JSON bodies (413 beyond)
  size_t max_recording_body = 1 << 20;  // POST /api/voicemail (the core's own per-message limit applies too)
  // Admin endpoints that set a password hash it as the CLI does (on the
  // calling thread: an admin action, rare and admin-only), with the core's
  // passwords.scram_iterations and accounts.removed_id_quarantine_days, read
  // at each request so a reload (NodeCore::reload_settings) holds here too.
};

class WebApi {
 public:
  // Web session links: bit 62 set, never a TLS link ID of the daemon's.
  static constexpr LinkId link_range_bit = LinkId{1} << 62;
  static constexpr std::string_view cookie_name = "tsunagu_session";

  WebApi(NodeCore& core, AccountStore& store, WebApiSettings settings,
         std::function<void(std::span<std::byte>)> random);
  ~WebApi();
  WebApi(const WebApi&) = delete;
  WebApi& operator=(const WebApi&) = delete;

  // Any request whose path starts with /api/ ; `respond` is called exactly
  // once: inside this call for a refusal (bad input, no session, CSRF), else
  // later from core_action() when the core answered, or with 401/503 when
  // the session or link ended first (core_action(), tick(), logout). After
  // handle() the daemon drains the core as after any other input (the
  // request may have queued password jobs, actions, or a commit). Answers
  // still pending when the WebApi is destroyed are never given.
  void handle(const web::HttpRequest& request, std::function<void(web::HttpResponse)> respond, Now now);
  bool owns_link(LinkId link) const { return (link & link_range_bit) != 0; }
  void core_action(const NodeAction& action, Now now);
  // Ends idle and too old sessions; keeps live sessions' links from the core's idle timeout.
  void tick(Now now);
  std::optional<uint64_t> next_deadline() const;
  // The session the request's cookie names, for the WebSocket of live
  // events; nullopt when no valid session.
  std::optional<uint64_t> session_of(const web::HttpRequest& request, Now now);
  // One subscriber per session (a new one replaces the old); events are JSON
  // texts per docs/web.md, sent while subscribed (not queued meanwhile).
  // Subscribing looks up the session's contacts: their presence follows.
  void subscribe(uint64_t session, std::function<void(std::string json_event)> send, Now now);
  void unsubscribe(uint64_t session);
  // The users NodeCore::take_presence_changes() named: each subscribed
  // session with one of them as a contact looks them up again (the core's
  // lookup, so its visibility rules decide what the session may see).
  void presence_changed(const std::vector<std::string>& users, Now now);
  // The users NodeCore::take_mailbox_changes() named: their subscribed
  // sessions list their mailbox and hear voicemail_waiting for a new message.
  void mailbox_changed(const std::vector<std::string>& users, Now now);

  size_t session_count() const { return sessions_.size(); }

  // Cluster mode (docs/cluster.md, "The web listener"): the admin endpoints
  // read and change accounts in `accounts` and total voicemail in `voicemail`
  // (the stores the core uses) instead of this node's LMDB; what has no
  // shared form yet (the card ledger, agents, password, verify and admin
  // changes) answers 501. Both outlive the WebApi.
  void use_shared_accounts(SharedAccountAdmin* accounts, VoicemailBoxes* voicemail) {
    shared_accounts_ = accounts;
    shared_voicemail_ = voicemail;
  }

  // Calls from and to the page (web_calls.cpp, docs/web.md "Calls from the
  // page"): a text message the session's event socket received, and the
  // socket's end (the page left: it takes no calls, its calls end).
  void socket_message(uint64_t session, std::string_view text, Now now);
  void socket_closed(uint64_t session, Now now);
  const BrowserCallCounters& browser_call_counters() const { return browser_counters_; }

 private:
  using Respond = std::function<void(web::HttpResponse)>;
  using OnReply = std::function<void(const proto::Message& reply, Now now)>;
  struct Session;
  struct Pending {
    LinkId link = 0;
    OnReply on_reply;
    std::function<void()> on_lost;  // the link ended before the answer came
  };

  void route(const web::HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now);
  // Register and login: a link of their own until the login makes it a session.
  void handle_register(const web::HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now);
  void handle_login(const web::HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now);
  // SCRAM from the page (docs/web.md, "Log in"): /api/login/begin opens the
  // exchange's link and answers server-first; /api/login with the exchange
  // and client-final finishes it. The password never reaches the node.
  void handle_login_begin(const web::HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now);
  void handle_scram_login(const std::string& exchange, const std::string& client_final,
                          const std::shared_ptr<Respond>& respond, Now now);
  // The core logged `link` in as `user`: a session, its cookie, and the answer.
  void start_session(LinkId link, const std::string& user, std::string server_final,
                     const std::shared_ptr<Respond>& respond, Now now);
  void answer_session(uint64_t session, const std::shared_ptr<Respond>& respond, std::string set_cookie, Now now,
                      std::string server_final = {});
  void handle_lookup(Session& session, const web::HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now);
  void handle_directory(Session& session, const web::HttpRequest& request, const std::shared_ptr<Respond>& respond,
                        Now now);
  void handle_categories(Session& session, const std::shared_ptr<Respond>& respond, Now now);
  void handle_profile(Session& session, const web::HttpRequest& request, const std::shared_ptr<Respond>& respond,
                      Now now);
  void handle_voicemail_list(Session& session, const web::HttpRequest& request, const std::shared_ptr<Respond>& respond,
                             Now now);
  void handle_voicemail_fetch(Session& session, uint64_t id, const std::shared_ptr<Respond>& respond, Now now);
  void handle_voicemail_delete(Session& session, uint64_t id, const std::shared_ptr<Respond>& respond, Now now);
  void handle_voicemail_upload(Session& session, const web::HttpRequest& request,
                               const std::shared_ptr<Respond>& respond, Now now);
  void handle_admin(Session& session, const web::HttpRequest& request, const std::shared_ptr<Respond>& respond,
                    Now now);
  // GET /api/admin/cards and /api/admin/cards/SERIAL, for handle_admin once the role is checked.
  void handle_admin_cards(const web::HttpRequest& request, const std::shared_ptr<Respond>& respond);

  LinkId open_link(const web::HttpRequest& request, Now now);
  void drop_link(LinkId link, Now now);  // tells the core, fails what waited on it
  // Sends a request on `link`; `on_reply` gets its answer.
  void send(LinkId link, proto::MessageBuilder builder, const proto::TransactionId& id, OnReply on_reply,
            std::function<void()> on_lost, Now now);
  proto::TransactionId fresh_transaction();
  // A message to the core, carrying the protocol version every terminal sends.
  static proto::MessageBuilder core_message(proto::MessageClass message_class, uint16_t method,
                                            const proto::TransactionId& id);
  std::string random_token();
  Session* find_session(const web::HttpRequest& request, Now now);
  void end_session(uint64_t session, Now now, bool tell_core);
  void emit(Session& session, std::string event);
  // Reads the session's contacts (profile_get) and looks up the new ones.
  void refresh_contacts(uint64_t session, Now now);
  void take_contacts(Session& session, const proto::Message& profile_row, Now now);
  void look_up_contact(Session& session, const std::string& contact, Now now);

  // Browser calls (web_calls.cpp).
  struct BrowserPage {
    bool available = false;  // its link is the user's presence
    std::map<std::string, proto::TransactionId> rings;  // call ID -> the ring awaiting the page's answer
  };
  LinkId link_of(uint64_t session) const;  // 0 when no such session
  void emit_to(uint64_t session, std::string event);
  std::optional<uint64_t> session_on(LinkId link) const;
  // The call messages the core sends a session's link: true when it was one.
  bool browser_call_message(LinkId link, const proto::Message& message, Now now);
  void call_error(uint64_t session, std::string_view call_id, std::string_view reason);
  void place_call(uint64_t session, const BrowserMessage& message, Now now);
  void ring_with_offer(uint64_t session, const BrowserMessage& message, Now now);
  void answer_ring(uint64_t session, const BrowserMessage& message, Now now);
  void refuse_ring(LinkId link, const proto::TransactionId& ring, uint16_t code, std::string_view reason, Now now);
  void send_call_request(uint64_t session, proto::MessageBuilder builder, const proto::TransactionId& id,
                         std::string call_id, std::function<void(const proto::Message&, Now)> on_success, Now now);
  std::unordered_map<uint64_t, BrowserPage> pages_;
  BrowserCallCounters browser_counters_;

  // The account behind a session, for its admin role: fresh from the store, not a cache.
  AdminResult<Account> read_session_account(const std::string& user);

  NodeCore& core_;
  AccountStore& store_;
  SharedAccountAdmin* shared_accounts_ = nullptr;
  VoicemailBoxes* shared_voicemail_ = nullptr;
  WebApiSettings settings_;
  std::function<void(std::span<std::byte>)> random_;
  std::optional<AgentRegistry> registry_;
  std::optional<VoicemailStore> voicemail_;
  // GET /api/admin/cards[/SERIAL]: the card ledger (read only here), and its
  // accounts database for the paged list (CardLedger has no paged scan).
  std::optional<CardLedger> card_ledger_;
  std::optional<storage::DatabaseHandle> card_accounts_;
  LinkId next_link_ = 1;
  uint64_t next_session_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
  std::unordered_map<std::string, uint64_t> session_by_token_hash_;
  std::unordered_map<LinkId, uint64_t> session_by_link_;
  std::map<std::string, Pending> pending_;  // by transaction ID bytes
  // SCRAM logins between /api/login/begin and /api/login, by exchange token.
  struct LoginExchange {
    LinkId link = 0;
    std::string user;
    uint64_t begun_ms = 0;
  };
  std::unordered_map<std::string, LoginExchange> login_exchanges_;
};

}  // namespace tsunagu::rendezvous
