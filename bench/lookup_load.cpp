// lookup_load: the benchmarks' lookup load generator (benchmarks 2 and 3).
//
// Opens N persistent TLS links to a node on loopback, logs each in once with
// LINK-ROLE query by SCRAM-SHA-256 (login_begin, then login with the proof;
// at most --login-inflight logins at a time). SaltedPassword is derived once
// per user and kept, as a terminal does for its reconnects, so the node's
// share is what a reconnect costs it; the one PBKDF2 is timed and reported as
// a first login's cost on the terminal. Optionally presence links (one per
// --presence-user; the first makes the looked-up user online), then runs
// phases on command. Each line on stdin
//
//   run LINKS INFLIGHT SECONDS [RATE]
//
// uses the first LINKS links with INFLIGHT lookups outstanding per link for
// SECONDS: closed loop (every answer sends the next lookup on that link), or,
// with RATE > 0, open loop at RATE lookups/s in total (paced with epoll_pwait2;
// latency counted from the scheduled time, so a backlog shows). It prints one
// JSON line per phase;
//
//   relogin LINKS SECONDS
//
// logs the first LINKS query links and the first presence link in again and
// again (closed loop, SCRAM with the cached SaltedPassword: what a reconnect
// costs the node, without the TLS handshake); the presence link's logins carry
// the node's durable write;
//
//   resume LINKS SECONDS
//
// does the same with login_resume: each link presents the session-resumption
// token its last login got (one round trip, one HMAC on the node) and keeps
// the new one;
//
//   presence-relogin LINKS SECONDS, presence-resume LINKS SECONDS
//
// do the same on the first LINKS presence links only, each a user of its own:
// every one of these logins is a presence login with its durable write (what a
// SIP registrar's REGISTER is). "quit" (or EOF) ends the program.
//
// Every answer is validated: it decodes (FINGERPRINT present and right), is a
// lookup success response with a transaction ID of a lookup in flight, has
// PRESENCE with the online bit, and carries the expected address of the target
// in REPORTED-ADDRESS, OBSERVED-ADDRESS or LEASE-ADDRESS (--target USER=IP).
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench/load_link.hpp"
#include "proto/signalling.hpp"
#include "security/scram.hpp"

namespace {

using namespace tsunagu;
using bench::LoadLink;
using bench::now_ns;
namespace sig = proto;

struct Target {
  std::string user;
  proto::SocketAddress expected;  // port ignored
};

struct Options {
  proto::SocketAddress node;
  std::string ca_file, server_name = "localhost";
  std::string user, password;
  std::vector<std::string> presence_users;  // one presence link each
  std::string presence_password;
  proto::SocketAddress presence_address;
  std::vector<Target> targets;
  size_t links = 1;
  size_t login_inflight = 32;
  double setup_timeout_s = 240;
};

struct Pending {
  uint64_t start_ns = 0;
  uint32_t link = 0;
  uint32_t target = 0;
};

struct Conn {
  LoadLink link;
  std::string user;
  bool presence = false;
  bool login_sent = false;
  bool logged_in = false;
  std::string client_nonce, server_first, auth;  // this link's SCRAM exchange
  Bytes resume_token;  // from its last login success
  uint32_t outstanding = 0;
};

struct PhaseResult {
  uint64_t sent = 0, responses = 0, invalid = 0, timeouts = 0, skipped = 0, error_responses = 0;
  std::map<std::string, uint64_t> reasons;
  std::vector<uint32_t> latencies_ns;
};

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

double cpu_seconds_self() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double percentile_us(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)] / 1000.0;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

class Generator {
 public:
  explicit Generator(Options options) : options_(std::move(options)) {
    std::random_device device;
    nonce_ = device();
  }

  bool setup(std::string& error);
  void serve_commands();

 private:
  bool add_to_epoll(size_t index);
  void update_interest(size_t index);
  void poll_once(int timeout_ms, const timespec* precise);
  void on_message(size_t index, ByteView bytes);
  void on_login_answer(size_t index, const proto::Message& message);
  void on_login_begin_answer(size_t index, const proto::Message& message);
  // SaltedPassword of `user`, derived once (the first login's PBKDF2, timed).
  const Bytes& salted_password(const std::string& user, const std::string& password, ByteView salt,
                               uint32_t iterations);
  void on_lookup_answer(size_t index, const proto::Message& message);
  void send_login(size_t index);
  void send_resume(size_t index);
  void on_resume_answer(size_t index, const proto::Message& message);
  // A login success: keep its token; in a relogin phase count it and log in again.
  void relogged(size_t index, bool presence);
  void send_lookup(size_t index, uint64_t start_ns);
  void send_keepalive(size_t index);
  void pump_logins();
  void maybe_keepalive();
  void invalid(const std::string& reason) {
    ++phase_.invalid;
    if (phase_.reasons[reason]++ == 0) std::fprintf(stderr, "lookup_load: invalid answer: %s\n", reason.c_str());
  }
  std::string run_phase(size_t links, uint32_t inflight, double seconds, double rate);
  std::string run_relogins(size_t links, double seconds, bool by_token, bool presence_only);
  bool all_presence_logged_in() const;
  proto::TransactionId next_id() { return bench::random_transaction(++counter_, nonce_); }

  Options options_;
  std::shared_ptr<security::TlsContext> context_;
  std::vector<std::unique_ptr<Conn>> conns_;  // [0, links) query links, then the presence links
  int epoll_fd_ = -1;
  uint32_t nonce_ = 0;
  uint64_t counter_ = 0;
  std::unordered_map<uint64_t, Pending> pending_;
  std::unordered_map<uint64_t, size_t> login_pending_;  // counter -> link
  size_t logins_in_flight_ = 0, logins_done_ = 0, next_login_ = 0;
  uint64_t first_login_ns_ = 0, last_login_ns_ = 0;
  std::vector<double> login_latency_ms_;
  std::map<std::string, Bytes> salted_;
  double pbkdf2_ms_ = 0;
  uint32_t scram_iterations_ = 0;
  bool relogin_phase_ = false, resume_phase_ = false;
  uint64_t relogins_ = 0, presence_relogins_ = 0;
  bool phase_sending_ = false, rate_closed_loop_ = true;
  uint32_t phase_inflight_ = 1;
  size_t phase_links_ = 0;
  size_t next_target_ = 0;
  PhaseResult phase_;
  uint64_t last_keepalive_ns_ = 0;
  bool stdin_ready_ = false, stdin_eof_ = false;
  std::string fatal_;
};

bool Generator::setup(std::string& error) {
  security::TlsContext::ClientOptions client;
  client.ca_file = options_.ca_file;
  auto context = security::TlsContext::client(client);
  if (!context) return error = "TLS context: " + context.error().detail, false;
  context_ = *context;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;  // stdin
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, 0, &ev);

  size_t total = options_.links + options_.presence_users.size();
  for (size_t i = 0; i < total; ++i) {
    auto conn = std::make_unique<Conn>();
    conn->presence = i >= options_.links;
    conn->user = conn->presence ? options_.presence_users[i - options_.links] : options_.user;
    if (auto failed = conn->link.connect(options_.node, nullptr, context_, options_.server_name))
      return error = "link " + std::to_string(i) + ": " + *failed, false;
    conns_.push_back(std::move(conn));
    if (!add_to_epoll(i)) return error = "epoll_ctl failed", false;
  }
  // The presence links log in first (each login is a durable write), then the
  // query links, at most login_inflight at a time.
  for (size_t i = options_.links; i < total; ++i) send_login(i);
  uint64_t deadline = now_ns() + static_cast<uint64_t>(options_.setup_timeout_s * 1e9);
  bool presence_ok = options_.presence_users.empty();
  while (logins_done_ < options_.links || !presence_ok) {
    pump_logins();
    poll_once(50, nullptr);
    maybe_keepalive();
    if (!fatal_.empty()) return error = fatal_, false;
    presence_ok = all_presence_logged_in();
    if (now_ns() > deadline)
      return error = "setup timed out: " + std::to_string(logins_done_) + " of " + std::to_string(options_.links) +
                     " logins done",
             false;
  }
  std::vector<double> sorted = login_latency_ms_;
  std::sort(sorted.begin(), sorted.end());
  double span_s = static_cast<double>(last_login_ns_ - first_login_ns_) / 1e9;
  std::printf("{\"ready\": true, \"links\": %zu, \"logins\": %zu, \"login_span_s\": %.3f, \"logins_per_s\": %.1f, "
              "\"login_p50_ms\": %.1f, \"login_max_ms\": %.1f, \"login_inflight\": %zu, \"scram_iterations\": %u, "
              "\"first_login_pbkdf2_ms\": %.1f, \"presence_links\": %zu}\n",
              options_.links, logins_done_, span_s, span_s > 0 ? static_cast<double>(logins_done_) / span_s : 0.0,
              sorted.empty() ? 0 : sorted[sorted.size() / 2], sorted.empty() ? 0 : sorted.back(),
              options_.login_inflight, scram_iterations_, pbkdf2_ms_, options_.presence_users.size());
  std::fflush(stdout);
  return true;
}

bool Generator::all_presence_logged_in() const {
  for (size_t i = options_.links; i < conns_.size(); ++i)
    if (!conns_[i]->logged_in) return false;
  return true;
}

bool Generator::add_to_epoll(size_t index) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = index;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conns_[index]->link.fd(), &ev) == 0;
}

void Generator::update_interest(size_t index) {
  auto& link = conns_[index]->link;
  if (link.fd() < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (link.wants_write() ? EPOLLOUT : 0u);
  ev.data.u64 = index;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, link.fd(), &ev);
}

void Generator::poll_once(int timeout_ms, const timespec* precise) {
  epoll_event events[256];
  int n = precise != nullptr ? epoll_pwait2(epoll_fd_, events, 256, precise, nullptr)
                             : epoll_wait(epoll_fd_, events, 256, timeout_ms);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == UINT64_MAX) {
      stdin_ready_ = true;
      continue;
    }
    size_t index = static_cast<size_t>(events[i].data.u64);
    Conn& conn = *conns_[index];
    if (conn.link.state() == LoadLink::State::closed) continue;
    bool ok = true;
    if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ok = conn.link.on_writable();
    if (ok && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
      ok = conn.link.on_readable([&](ByteView bytes) { on_message(index, bytes); });
    if (!ok) {
      fatal_ = "link " + std::to_string(index) + " failed: " + conn.link.error();
      continue;
    }
    update_interest(index);
  }
}

void Generator::send_login(size_t index) {
  Conn& conn = *conns_[index];
  uint64_t id_counter = counter_ + 1;
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::login_begin, next_id());
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  conn.client_nonce = "bench-nonce-" + std::to_string(1'000'000 + index);
  b.add_string(sig::attr::scram_client_first,
               security::scram::build_client_first(conn.user, conn.client_nonce));
  Bytes message = b.finish();
  conn.login_sent = true;
  login_pending_[id_counter] = index;
  pending_[id_counter] = Pending{now_ns(), static_cast<uint32_t>(index), 0};
  if (!conn.presence) {
    ++logins_in_flight_;
    if (first_login_ns_ == 0) first_login_ns_ = now_ns();
  }
  if (!conn.link.send(message)) fatal_ = "login send failed: " + conn.link.error();
  update_interest(index);
}

void Generator::pump_logins() {
  while (logins_in_flight_ < options_.login_inflight && next_login_ < options_.links) send_login(next_login_++);
}

void Generator::send_keepalive(size_t index) {
  Conn& conn = *conns_[index];
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::keepalive, next_id());
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  conn.link.send(b.finish());
  update_interest(index);
}

void Generator::maybe_keepalive() {
  // The presence links must stay alive (default interval 15 s, 3 misses).
  if (options_.presence_users.empty()) return;
  uint64_t now = now_ns();
  if (now - last_keepalive_ns_ < 5'000'000'000ull) return;
  last_keepalive_ns_ = now;
  for (size_t i = options_.links; i < conns_.size(); ++i)
    if (conns_[i]->logged_in) send_keepalive(i);
}

void Generator::send_lookup(size_t index, uint64_t start_ns) {
  Conn& conn = *conns_[index];
  uint32_t target = static_cast<uint32_t>(next_target_++ % options_.targets.size());
  uint64_t id_counter = counter_ + 1;
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::lookup, next_id());
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  b.add_string(sig::attr::user_id, options_.targets[target].user);
  pending_[id_counter] = Pending{start_ns, static_cast<uint32_t>(index), target};
  ++conn.outstanding;
  ++phase_.sent;
  if (!conn.link.send(b.finish())) fatal_ = "lookup send failed: " + conn.link.error();
}

void Generator::on_message(size_t index, ByteView bytes) {
  auto decoded = proto::decode(bytes);
  if (!decoded) return invalid(std::string("does not decode: ") + decoded.error().detail);
  const proto::Message& m = decoded->message;
  if (!m.has_fingerprint) return invalid("no FINGERPRINT");
  if (m.message_class == proto::MessageClass::indication) return;  // notices
  uint64_t counter = load_be64(m.transaction_id.bytes.data() + 4);
  if (load_be32(m.transaction_id.bytes.data()) != nonce_) return invalid("unknown transaction ID");
  if (m.method == sig::method::keepalive) {
    pending_.erase(counter);
    if (m.message_class != proto::MessageClass::success) fatal_ = "keepalive refused on the presence link";
    return;
  }
  if (m.method == sig::method::login_begin) return on_login_begin_answer(index, m);
  if (m.method == sig::method::login) return on_login_answer(index, m);
  if (m.method == sig::method::login_resume) return on_resume_answer(index, m);
  if (m.method == sig::method::lookup) return on_lookup_answer(index, m);
  invalid("unexpected method " + std::to_string(m.method));
}

const Bytes& Generator::salted_password(const std::string& user, const std::string& password, ByteView salt,
                                        uint32_t iterations) {
  auto it = salted_.find(user);
  if (it != salted_.end()) return it->second;
  uint64_t start = now_ns();
  Bytes salted = security::scram::salted_password(password, salt, iterations);
  // Reported: the derivation at the highest iteration count (the production
  // one; users made for a phase that never runs PBKDF2 may have fewer).
  if (iterations >= scram_iterations_) {
    pbkdf2_ms_ = static_cast<double>(now_ns() - start) / 1e6;
    scram_iterations_ = iterations;
  }
  return salted_.emplace(user, std::move(salted)).first->second;
}

void Generator::on_login_begin_answer(size_t index, const proto::Message& m) {
  uint64_t counter = load_be64(m.transaction_id.bytes.data() + 4);
  auto it = login_pending_.find(counter);
  if (it == login_pending_.end() || it->second != index) return invalid("login_begin answer for no login");
  login_pending_.erase(it);
  auto p = pending_.find(counter);
  Pending started = p == pending_.end() ? Pending{now_ns(), static_cast<uint32_t>(index), 0} : p->second;
  if (p != pending_.end()) pending_.erase(p);
  Conn& conn = *conns_[index];
  const auto* first = m.find(sig::attr::scram_server_first);
  if (m.message_class != proto::MessageClass::success || first == nullptr) {
    fatal_ = "login_begin refused";
    return;
  }
  conn.server_first = std::string(proto::read_string(*first));
  auto parsed = security::scram::parse_server_first(conn.server_first);
  if (!parsed || !parsed->nonce.starts_with(conn.client_nonce)) {
    fatal_ = "login_begin: bad server-first";
    return;
  }
  const std::string& user = conn.user;
  const Bytes& salted = salted_password(user, conn.presence ? options_.presence_password : options_.password,
                                        parsed->salt, parsed->iterations);
  conn.auth = security::scram::auth_message(security::scram::build_client_first_bare(user, conn.client_nonce),
                                            conn.server_first,
                                            security::scram::build_client_final_without_proof(parsed->nonce));
  uint64_t id_counter = counter_ + 1;
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::login, next_id());
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  b.add_string(sig::attr::scram_client_final,
               security::scram::build_client_final(parsed->nonce, security::scram::client_proof(salted, conn.auth)));
  if (conn.presence) {
    b.add_xor_address(sig::attr::reported_address, options_.presence_address);
  } else {
    b.add_u32(sig::attr::link_role, sig::link_role::query);
  }
  login_pending_[id_counter] = index;
  pending_[id_counter] = started;
  if (!conn.link.send(b.finish())) fatal_ = "login send failed: " + conn.link.error();
  update_interest(index);
}

void Generator::on_login_answer(size_t index, const proto::Message& m) {
  uint64_t counter = load_be64(m.transaction_id.bytes.data() + 4);
  auto it = login_pending_.find(counter);
  if (it == login_pending_.end() || it->second != index) return invalid("login answer for no login");
  login_pending_.erase(it);
  Conn& conn = *conns_[index];
  auto p = pending_.find(counter);
  uint64_t started = p == pending_.end() ? now_ns() : p->second.start_ns;
  if (p != pending_.end()) pending_.erase(p);
  if (m.message_class != proto::MessageClass::success) {
    const auto* code = m.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    fatal_ = "login refused: " + (parsed ? std::to_string(parsed->code) + " " + std::string(parsed->reason) : "?");
    return;
  }
  const auto* server_final = m.find(sig::attr::scram_server_final);
  auto final_message = security::scram::parse_server_final(server_final ? proto::read_string(*server_final) : "");
  const Bytes& salted = salted_.at(conn.user);
  if (!final_message || !security::scram::verify_server_signature(salted, conn.auth, final_message->verifier)) {
    fatal_ = "login: the node's SCRAM signature does not verify";
    return;
  }
  conn.logged_in = true;
  if (const auto* token = m.find(sig::attr::resume_token)) conn.resume_token.assign(token->value.begin(), token->value.end());
  if (!conn.presence) {
    --logins_in_flight_;
    ++logins_done_;
    last_login_ns_ = now_ns();
    login_latency_ms_.push_back(static_cast<double>(last_login_ns_ - started) / 1e6);
  }
  if (relogin_phase_) relogged(index, conn.presence);
}

void Generator::relogged(size_t index, bool presence) {
  ++(presence ? presence_relogins_ : relogins_);
  if (resume_phase_) send_resume(index);
  else send_login(index);
}

void Generator::send_resume(size_t index) {
  Conn& conn = *conns_[index];
  if (conn.resume_token.empty()) {
    fatal_ = "resume: the link's login got no RESUME-TOKEN (a node without tokens, or resume_token_ttl = 0)";
    return;
  }
  uint64_t id_counter = counter_ + 1;
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::login_resume, next_id());
  b.add_u32(sig::attr::protocol_version, sig::protocol_version);
  b.add_string(sig::attr::user_id, conn.user);
  b.add(sig::attr::resume_token, conn.resume_token);
  if (conn.presence) {
    b.add_xor_address(sig::attr::reported_address, options_.presence_address);
  } else {
    b.add_u32(sig::attr::link_role, sig::link_role::query);
  }
  login_pending_[id_counter] = index;
  if (!conn.link.send(b.finish())) fatal_ = "resume send failed: " + conn.link.error();
  update_interest(index);
}

void Generator::on_resume_answer(size_t index, const proto::Message& m) {
  uint64_t counter = load_be64(m.transaction_id.bytes.data() + 4);
  auto it = login_pending_.find(counter);
  if (it == login_pending_.end() || it->second != index) return invalid("login_resume answer for no login");
  login_pending_.erase(it);
  Conn& conn = *conns_[index];
  const auto* token = m.find(sig::attr::resume_token);
  if (m.message_class != proto::MessageClass::success || token == nullptr) {
    const auto* code = m.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    fatal_ = "resume refused: " + (parsed ? std::to_string(parsed->code) + " " + std::string(parsed->reason) : "no token");
    return;
  }
  conn.resume_token.assign(token->value.begin(), token->value.end());
  if (relogin_phase_) relogged(index, conn.presence);
}

std::string Generator::run_relogins(size_t links, double seconds, bool by_token, bool presence_only) {
  size_t count = presence_only ? std::min(links, options_.presence_users.size()) : std::min(links, options_.links);
  relogins_ = presence_relogins_ = 0;
  relogin_phase_ = true;
  resume_phase_ = by_token;
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(seconds * 1e9);
  if (presence_only) {
    for (size_t i = 0; i < count; ++i) relogged(options_.links + i, true);
  } else {
    for (size_t i = 0; i < count; ++i) relogged(i, false);
    if (!options_.presence_users.empty()) relogged(options_.links, true);
  }
  relogins_ = presence_relogins_ = 0;  // relogged() counted the starts
  while (now_ns() < end && fatal_.empty()) poll_once(5, nullptr);
  relogin_phase_ = resume_phase_ = false;
  double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  uint64_t drain_deadline = now_ns() + 2'000'000'000ull;
  while (!login_pending_.empty() && now_ns() < drain_deadline && fatal_.empty()) poll_once(5, nullptr);
  char line[512];
  std::snprintf(line, sizeof line,
                "{\"method\": \"%s\", \"presence_only\": %s, \"relogin_links\": %zu, \"duration_s\": %.3f, \"relogins\": %llu, \"presence_relogins\": %llu, "
                "\"relogins_per_s\": %.1f, \"unfinished\": %zu}",
                by_token ? "token" : "scram", presence_only ? "true" : "false", count, elapsed, static_cast<unsigned long long>(relogins_),
                static_cast<unsigned long long>(presence_relogins_),
                static_cast<double>(relogins_ + presence_relogins_) / elapsed, login_pending_.size());
  return line;
}

void Generator::on_lookup_answer(size_t index, const proto::Message& m) {
  uint64_t counter = load_be64(m.transaction_id.bytes.data() + 4);
  auto it = pending_.find(counter);
  if (it == pending_.end() || it->second.link != index) return invalid("answer to no lookup in flight on this link");
  Pending pending = it->second;
  pending_.erase(it);
  Conn& conn = *conns_[index];
  --conn.outstanding;
  uint64_t now = now_ns();
  bool ok = true;
  if (m.message_class != proto::MessageClass::success) {
    ++phase_.error_responses;
    const auto* code = m.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    invalid("error response " + (parsed ? std::to_string(parsed->code) : std::string("?")));
    ok = false;
  } else {
    const auto* presence = m.find(sig::attr::presence);
    auto flags = presence ? proto::read_u32(*presence) : std::nullopt;
    if (!flags || !(*flags & sig::presence_flag::online)) {
      invalid("PRESENCE missing or not online");
      ok = false;
    } else {
      const auto& expected = options_.targets[pending.target].expected;
      bool found = false;
      for (uint16_t type : {sig::attr::reported_address, sig::attr::observed_address, sig::attr::lease_address}) {
        for (const auto* a : m.find_all(type)) {
          auto address = proto::read_xor_address(*a, m);
          if (address && address->family == expected.family && address->ip == expected.ip) found = true;
        }
      }
      if (!found) {
        invalid("the expected address is not in the answer");
        ok = false;
      }
    }
  }
  if (ok) {
    ++phase_.responses;
    phase_.latencies_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(now - pending.start_ns, UINT32_MAX)));
  }
  if (phase_sending_ && phase_inflight_ > 0 && rate_closed_loop_) send_lookup(index, now_ns());
}


std::string Generator::run_phase(size_t links, uint32_t inflight, double seconds, double rate) {
  phase_ = PhaseResult{};
  phase_.latencies_ns.reserve(1 << 20);
  phase_links_ = std::min(links, options_.links);
  phase_inflight_ = inflight;
  rate_closed_loop_ = rate <= 0;
  double cpu0 = cpu_seconds_self();
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(seconds * 1e9);
  phase_sending_ = true;
  if (rate_closed_loop_) {
    for (size_t i = 0; i < phase_links_; ++i) {
      for (uint32_t k = 0; k < inflight; ++k) send_lookup(i, now_ns());
      update_interest(i);
    }
    while (now_ns() < end && fatal_.empty()) {
      poll_once(5, nullptr);
      maybe_keepalive();
    }
  } else {
    // Open loop: lookup number n is due at start + n / rate, on the next link
    // (round robin) with room; when every link is full it is skipped.
    double interval_ns = 1e9 / rate;
    uint64_t n = 0;
    size_t cursor = 0;
    while (fatal_.empty()) {
      uint64_t now = now_ns();
      if (now >= end) break;
      while (true) {
        uint64_t due = start + static_cast<uint64_t>(static_cast<double>(n) * interval_ns);
        if (due > now || due >= end) break;
        ++n;
        bool sent = false;
        for (size_t tries = 0; tries < phase_links_; ++tries) {
          size_t i = cursor++ % phase_links_;
          if (conns_[i]->outstanding < inflight) {
            send_lookup(i, due);
            update_interest(i);
            sent = true;
            break;
          }
        }
        if (!sent) ++phase_.skipped;
      }
      uint64_t due = start + static_cast<uint64_t>(static_cast<double>(n) * interval_ns);
      uint64_t wait = due > now ? std::min<uint64_t>(due - now, 5'000'000) : 0;
      timespec ts{static_cast<time_t>(wait / 1'000'000'000u), static_cast<long>(wait % 1'000'000'000u)};
      poll_once(0, &ts);
      maybe_keepalive();
    }
  }
  phase_sending_ = false;
  double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  // Let the lookups still in flight finish (bounded).
  uint64_t drain_deadline = now_ns() + 2'000'000'000ull;
  auto outstanding = [&] {
    size_t total = 0;
    for (size_t i = 0; i < phase_links_; ++i) total += conns_[i]->outstanding;
    return total;
  };
  while (outstanding() > 0 && now_ns() < drain_deadline && fatal_.empty()) poll_once(5, nullptr);
  phase_.timeouts = outstanding();
  for (size_t i = 0; i < phase_links_; ++i) conns_[i]->outstanding = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (login_pending_.count(it->first) == 0 && it->second.link < phase_links_)
      it = pending_.erase(it);
    else
      ++it;
  }
  double cpu = cpu_seconds_self() - cpu0;
  std::sort(phase_.latencies_ns.begin(), phase_.latencies_ns.end());
  std::string reasons;
  for (const auto& [reason, count] : phase_.reasons) {
    if (!reasons.empty()) reasons += ", ";
    reasons += "\"" + json_escape(reason) + "\": " + std::to_string(count);
  }
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"links\": %zu, \"inflight\": %u, \"rate\": %.1f, \"duration_s\": %.3f, \"sent\": %llu, "
                "\"responses\": %llu, \"responses_per_s\": %.1f, \"invalid\": %llu, \"timeouts\": %llu, "
                "\"skipped\": %llu, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
                "\"generator_cpu_s\": %.3f, \"fatal\": \"%s\", \"invalid_reasons\": {%s}}",
                phase_links_, inflight, rate, elapsed, static_cast<unsigned long long>(phase_.sent),
                static_cast<unsigned long long>(phase_.responses), static_cast<double>(phase_.responses) / elapsed,
                static_cast<unsigned long long>(phase_.invalid), static_cast<unsigned long long>(phase_.timeouts),
                static_cast<unsigned long long>(phase_.skipped), percentile_us(phase_.latencies_ns, 0.5),
                percentile_us(phase_.latencies_ns, 0.9), percentile_us(phase_.latencies_ns, 0.99),
                phase_.latencies_ns.empty() ? 0.0 : phase_.latencies_ns.back() / 1000.0, cpu,
                json_escape(fatal_).c_str(), reasons.c_str());
  return line;
}

void Generator::serve_commands() {
  std::string buffer;
  while (!stdin_eof_) {
    poll_once(200, nullptr);
    maybe_keepalive();
    if (!fatal_.empty()) {
      std::printf("{\"fatal\": \"%s\"}\n", json_escape(fatal_).c_str());
      std::fflush(stdout);
      return;
    }
    if (!stdin_ready_) continue;
    stdin_ready_ = false;
    char chunk[512];
    ssize_t n = ::read(0, chunk, sizeof chunk);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    buffer.append(chunk, static_cast<size_t>(n));
    size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      std::string command = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      std::istringstream words(command);
      std::string verb;
      words >> verb;
      if (verb == "quit") return;
      if (verb == "relogin" || verb == "resume" || verb == "presence-relogin" || verb == "presence-resume") {
        size_t links = 0;
        double seconds = 0;
        words >> links >> seconds;
        bool presence_only = verb.starts_with("presence-");
        if (links == 0 || !(seconds > 0 && seconds <= 120)) {
          std::printf("{\"error\": \"%s wants LINKS SECONDS(0..120]\"}\n", verb.c_str());
        } else if (presence_only && options_.presence_users.empty()) {
          std::printf("{\"error\": \"%s needs --presence-user\"}\n", verb.c_str());
        } else {
          std::printf("%s\n", run_relogins(links, seconds, verb.ends_with("resume"), presence_only).c_str());
        }
        std::fflush(stdout);
        continue;
      }
      if (verb != "run") {
        std::printf("{\"error\": \"unknown command\"}\n");
        std::fflush(stdout);
        continue;
      }
      size_t links = 0;
      uint32_t inflight = 0;
      double seconds = 0, rate = 0;
      words >> links >> inflight >> seconds;
      if (!(words >> rate)) rate = 0;
      if (links == 0 || inflight == 0 || inflight > 64 || !(seconds > 0 && seconds <= 120) || rate < 0) {
        std::printf("{\"error\": \"run wants LINKS INFLIGHT(1..64) SECONDS(0..120] [RATE]\"}\n");
        std::fflush(stdout);
        continue;
      }
      std::string result = run_phase(links, inflight, seconds, rate);
      std::printf("%s\n", result.c_str());
      std::fflush(stdout);
    }
  }
}

const char* usage_text =
    "usage: lookup_load --node 127.0.0.1:PORT --ca CA.crt --user ID --password-file FILE\n"
    "                   --target USER=IP [--target ...] [--links N] [--login-inflight N]\n"
    "                   [--presence-user ID [--presence-user ID2 ...] --presence-password-file FILE\n"
    "                    --presence-address IP:PORT]\n"
    "                   [--server-name NAME] [--setup-timeout S]\n"
    "Logs N TLS links in (query role) and a presence link per --presence-user, prints a\n"
    "JSON 'ready' line, then runs the phases read from stdin: 'run LINKS INFLIGHT SECONDS\n"
    "[RATE]', 'relogin|resume|presence-relogin|presence-resume LINKS SECONDS', one JSON\n"
    "line each; 'quit' ends.\n";

bool parse_options(int argc, char** argv, Options& o, std::string& error) {
  std::string password_file, presence_password_file;
  bool have_node = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return {};
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (arg == "--node") {
      auto parsed = proto::SocketAddress::parse(value());
      if (!parsed || parsed->port == 0) return error = "--node wants ADDRESS:PORT", false;
      o.node = *parsed;
      have_node = true;
    } else if (arg == "--ca") {
      o.ca_file = value();
    } else if (arg == "--server-name") {
      o.server_name = value();
    } else if (arg == "--user") {
      o.user = value();
    } else if (arg == "--password-file") {
      password_file = value();
    } else if (arg == "--presence-user") {
      o.presence_users.push_back(value());
    } else if (arg == "--presence-password-file") {
      presence_password_file = value();
    } else if (arg == "--presence-address") {
      auto parsed = proto::SocketAddress::parse(value());
      if (!parsed) return error = "--presence-address wants IP:PORT", false;
      o.presence_address = *parsed;
    } else if (arg == "--target") {
      std::string text = value();
      size_t eq = text.find('=');
      if (eq == std::string::npos) return error = "--target wants USER=IP", false;
      auto ip = proto::SocketAddress::parse(text.substr(eq + 1), 0);
      if (!ip) return error = "--target wants USER=IP", false;
      o.targets.push_back(Target{text.substr(0, eq), *ip});
    } else if (arg == "--links") {
      std::string text = value();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), o.links);
      if (ec != std::errc() || end != text.data() + text.size() || o.links == 0 || o.links > 30000)
        return error = "--links wants 1..30000", false;
    } else if (arg == "--login-inflight") {
      std::string text = value();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), o.login_inflight);
      if (ec != std::errc() || o.login_inflight == 0 || o.login_inflight > 4096)
        return error = "--login-inflight wants 1..4096", false;
    } else if (arg == "--setup-timeout") {
      o.setup_timeout_s = std::strtod(value().c_str(), nullptr);
      if (!(o.setup_timeout_s > 0 && o.setup_timeout_s <= 3600)) return error = "--setup-timeout wants (0, 3600]", false;
    } else {
      return error = "unknown argument " + std::string(arg), false;
    }
  }
  if (!have_node || o.ca_file.empty() || o.user.empty() || password_file.empty() || o.targets.empty())
    return error = "--node, --ca, --user, --password-file and --target are required", false;
  if (!bench::is_loopback(o.node)) return error = "--node must be a loopback address", false;
  o.password = read_first_line(password_file);
  if (!o.presence_users.empty()) {
    if (presence_password_file.empty()) return error = "--presence-user needs --presence-password-file", false;
    o.presence_password = read_first_line(presence_password_file);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options options;
  std::string error;
  if (!parse_options(argc, argv, options, error)) {
    std::fprintf(stderr, "lookup_load: %s\n%s", error.c_str(), usage_text);
    return 2;
  }
  Generator generator(std::move(options));
  if (!generator.setup(error)) {
    std::fprintf(stderr, "lookup_load: %s\n", error.c_str());
    std::printf("{\"fatal\": \"%s\"}\n", json_escape(error).c_str());
    return 1;
  }
  generator.serve_commands();
  return 0;
}
