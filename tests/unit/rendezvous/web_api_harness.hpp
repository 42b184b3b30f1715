// A node as the daemon will run it for the web: NodeCore over a real LMDB
// store in a temporary directory, the WebApi beside it, and the daemon's turn
// (commit, password jobs run inline with the real scrypt, actions routed to
// the WebApi when it owns their link). Shared by web_api_test.cpp and the
// fuzz target (tests/fuzz/rendezvous/web_api_fuzz.cpp); no doctest here.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "rendezvous/account_admin.hpp"
#include "rendezvous/node_core.hpp"
#include "rendezvous/web_api.hpp"
#include "security/passwords.hpp"

namespace tsunagu::rendezvous::testing {

inline const security::ScryptParameters fast_hashing{10, 8, 1};

inline std::function<void(std::span<std::byte>)> seeded(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine](std::span<std::byte> out) {
    for (auto& b : out) b = static_cast<std::byte>((*engine)() & 0xFF);
  };
}

inline NodeSettings web_test_settings() {
  NodeSettings settings;
  settings.password_hashing = fast_hashing;
  settings.scram_iterations = security::scram::min_iterations;  // tests only; production keeps 600,000
  settings.random = seeded(20261205);
  settings.open_registration = true;
  settings.account_check_interval_ms = 1000;
  return settings;
}

// A browser's state: its cookie and the session's CSRF token.
struct Browser {
  std::string cookie;  // "tsunagu_session=..."
  std::string csrf;
  std::string address = "203.0.113.7:51234";
};

class WebNode {
 public:
  explicit WebNode(NodeSettings settings = web_test_settings(), WebApiSettings web = {}) {
    char tmpl[] = "/tmp/tsunagu-web-XXXXXX";
    char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = made;
    auto store = AccountStore::open(dir_, uint64_t{64} << 20);
    if (!store) throw std::runtime_error("store");
    store_ = std::move(*store);
    core_ = std::make_unique<NodeCore>(*store_, std::move(settings));
    api_ = std::make_unique<WebApi>(*core_, *store_, web, seeded(7));
  }
  ~WebNode() {
    api_.reset();
    core_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  NodeCore& core() { return *core_; }
  WebApi& api() { return *api_; }
  AccountStore& store() { return *store_; }
  Now now() const { return now_; }
  void advance_ms(uint64_t ms) {
    now_.mono_ms += ms;
    now_.unix_s = 1'790'000'000 + now_.mono_ms / 1000;
  }
  // Both tick, as the daemon's one timer would.
  void tick() {
    core_->tick(now_);
    api_->tick(now_);
    pump();
  }

  void add_account(const std::string& id, const std::string& password, bool admin = false, std::string name = {}) {
    NewAccount account;
    account.user_id = id;
    account.password_hash = security::hash_password(password, fast_hashing);
    account.display_name = std::move(name);
    account.admin = admin;
    auto added = rendezvous::add_account(*store_, account, 30, now_.unix_s);
    if (!added) throw std::runtime_error(added.error().detail);
  }

  // The daemon's turns until nothing is left to do.
  void pump() {
    for (int round = 0; round < 100'000; ++round) {
      core_->commit_turn();
      auto jobs = core_->take_password_jobs();
      for (const auto& job : jobs) core_->password_job_done(run_password_job(job), now_);
      core_->commit_turn();
      auto changed = core_->take_presence_changes();
      api_->presence_changed(changed, now_);
      auto mailboxes = core_->take_mailbox_changes();
      api_->mailbox_changed(mailboxes, now_);
      auto actions = core_->take_actions();
      for (const auto& action : actions) {
        if (api_->owns_link(action.link)) api_->core_action(action, now_);
        else terminal_actions_.push_back(action);
      }
      if (jobs.empty() && actions.empty() && changed.empty() && mailboxes.empty()) return;
    }
    throw std::runtime_error("the node never settled");
  }

  struct Answer {
    bool answered = false;
    web::HttpResponse response;
    const std::string* header(std::string_view name) const { return response.headers.find(name); }
  };

  // One HTTP request through the API, answered once the node settled.
  Answer request(const Browser& browser, std::string method, std::string target, std::string body = {},
                 std::string content_type = "application/json", bool with_csrf = true) {
    web::HttpRequest r;
    r.method = std::move(method);
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string query = target.substr(q + 1);
      size_t at = 0;
      while (at <= query.size()) {
        size_t end = query.find('&', at);
        if (end == std::string::npos) end = query.size();
        std::string pair = query.substr(at, end - at);
        size_t eq = pair.find('=');
        if (!pair.empty()) r.query.emplace_back(pair.substr(0, eq), eq == std::string::npos ? "" : pair.substr(eq + 1));
        at = end + 1;
      }
    }
    if (!browser.cookie.empty()) r.headers.add("cookie", browser.cookie);
    if (with_csrf && !browser.csrf.empty()) r.headers.add("x-csrf-token", browser.csrf);
    if (!body.empty() && !content_type.empty()) r.headers.add("content-type", content_type);
    r.body = std::move(body);
    r.client_address = browser.address;
    auto answer = std::make_shared<Answer>();
    auto count = std::make_shared<int>(0);
    api_->handle(r, [answer, count](web::HttpResponse response) {
      ++*count;
      answer->answered = true;
      answer->response = std::move(response);
    }, now_);
    pump();
    if (*count > 1) throw std::logic_error("answered twice");
    return *answer;
  }

  // A password login by `browser`; on 200 the browser keeps the session
  // cookie and the CSRF token, as a page does.
  Answer log_in(Browser& browser, const std::string& id, const std::string& password) {
    Answer answer = request(browser, "POST", "/api/login", nlohmann::json{{"id", id}, {"password", password}}.dump());
    const std::string* cookie = answer.header("set-cookie");
    if (answer.response.status != 200 || cookie == nullptr) return answer;
    browser.cookie = cookie->substr(0, cookie->find(';'));
    auto body = nlohmann::json::parse(answer.response.body, nullptr, false);
    if (body.is_object() && body.contains("csrf_token") && body["csrf_token"].is_string())
      browser.csrf = body["csrf_token"].get<std::string>();
    return answer;
  }
  // The web session `browser`'s cookie names, as the event socket finds it.
  std::optional<uint64_t> session_of(const Browser& browser) {
    web::HttpRequest with_cookie;
    with_cookie.headers.add("cookie", browser.cookie);
    return api_->session_of(with_cookie, now_);
  }

  // A terminal logged in as `id` on TLS link `link` (presence): online.
  void terminal_login(LinkId link, const std::string& id, const std::string& password) {
    core_->link_opened(link, proto::SocketAddress::v4({198, 51, 100, 9}, 40000), now_);
    proto::TransactionId txn;
    txn.bytes[0] = std::byte{1};
    txn.bytes[1] = static_cast<std::byte>(link);
    proto::MessageBuilder b(proto::MessageClass::request, proto::method::login, txn);
    b.add_u32(proto::attr::protocol_version, proto::protocol_version);
    b.add_string(proto::attr::user_id, id);
    b.add_string(proto::attr::password, password);
    core_->message(link, b.finish(), now_);
    pump();
  }
  // What the core sent to terminal links since the last call, and a
  // terminal's message in (browser calls: web_api_test.cpp).
  std::vector<NodeAction> take_terminal_actions() { return std::move(terminal_actions_); }
  void terminal_send(LinkId link, Bytes message) {
    core_->message(link, message, now_);
    pump();
  }
  void terminal_gone(LinkId link) {
    core_->link_closed(link, now_);
    pump();
  }

 private:
  std::string dir_;
  std::unique_ptr<AccountStore> store_;
  std::unique_ptr<NodeCore> core_;
  std::unique_ptr<WebApi> api_;
  Now now_{1'000'000, 1'790'001'000};
  std::vector<NodeAction> terminal_actions_;
};

}  // namespace tsunagu::rendezvous::testing
