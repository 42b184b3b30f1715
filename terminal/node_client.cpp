#include "terminal/node_client.hpp"

#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "security/random.hpp"
#include "security/scram.hpp"

namespace tsunagu::terminal {

std::optional<std::vector<std::string>> split_node_list(std::string_view text, std::string& error) {
  std::vector<std::string> nodes;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view entry = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (entry.empty()) {
      error = "\"" + std::string(text) + "\": an empty node in the list (give host:port[,host:port...])";
      return std::nullopt;
    }
    nodes.emplace_back(entry);
    if (comma == std::string_view::npos) return nodes;
    start = comma + 1;
  }
}

std::optional<proto::SocketAddress> resolve_node_address(const std::string& text, std::string& host_out,
                                                          std::string& error) {
  if (auto literal = proto::SocketAddress::parse(text)) {
    host_out = literal->ip_string();
    return literal;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    error = "\"" + text + "\" is not host:port";
    return std::nullopt;
  }
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  auto address = transport::from_sockaddr(result->ai_addr);
  freeaddrinfo(result);
  host_out = host;
  return address;
}

NodeClient::NodeClient(uv_loop_t* loop, NodeClientOptions options, NodeClientEvents events)
    : loop_(loop), options_(std::move(options)), events_(std::move(events)) {}

// The link aborts a connection still open; it calls nothing of ours after.
NodeClient::~NodeClient() {
  security::wipe(salted_password_);
  security::wipe(resume_token_);
}

Expected<void, ClientStartFailure> NodeClient::start() {
  if (link_) return Unexpected(ClientStartFailure{ClientFailure::protocol, "already started"});
  security::TlsContext::ClientOptions tls_options;
  tls_options.ca_file = options_.ca_file;
  auto tls = security::TlsContext::client(tls_options);
  if (!tls) return Unexpected(ClientStartFailure{ClientFailure::tls, tls.error().detail});

  transport::ReconnectingLinkOptions link_options;
  link_options.address = options_.node.to_string();
  link_options.verify_name = options_.verify_name;
  link_options.alternates = options_.other_nodes;
  link_options.tls = *tls;
  link_options.request_timeout_ms = options_.request_timeout_ms;
  link_options.reconnect = options_.reconnect;
  // A query link lives for one command; only a presence needs keeping alive.
  if (options_.role == proto::link_role::presence) link_options.keepalive_method = proto::method::keepalive;
  transport::ReconnectingLinkEvents link_events;
  link_events.on_connected = [this] { on_connected(); };
  link_events.on_message = [this](const proto::Message& message, ByteView) { on_message(message); };
  link_events.on_lost = [this](const transport::LinkLoss& loss) { on_lost(loss); };
  link_ = std::make_unique<transport::ReconnectingLink>(loop_, std::move(link_options), std::move(link_events));
  if (auto started = link_->start(); !started) {
    link_.reset();
    return Unexpected(ClientStartFailure{ClientFailure::network, started.error().detail});
  }
  return {};
}

void NodeClient::on_connected() {
  if (options_.authenticate) {
    if (resume_token_.empty()) send_login_begin();
    else send_token_login();
    return;
  }
  link_->established(0);
  if (events_.on_connected) events_.on_connected();
}

void NodeClient::add_login_details(proto::MessageBuilder& b) {
  b.add_u32(proto::attr::link_role, options_.role);
  b.add_xor_address(proto::attr::reported_address, link_->local_address());
  for (const auto& extra : options_.extra_reported) b.add_xor_address(proto::attr::reported_address, extra);
}

void NodeClient::send_login_begin() {
  client_nonce_ = security::scram::make_nonce();
  std::string first = security::scram::build_client_first(options_.user_id, client_nonce_);
  auto sent = link_->request(
      proto::method::login_begin,
      [&](proto::MessageBuilder& b) { b.add_string(proto::attr::scram_client_first, first); },
      [this](const proto::Message* response, transport::RequestFailure failure) {
        on_login_begin_response(response, failure);
      });
  if (!sent) link_->drop("login: " + sent.error().detail, std::nullopt, transport::ReconnectingLink::Closing::at_once);
}

void NodeClient::on_login_begin_response(const proto::Message* response, transport::RequestFailure failure) {
  if (handled_login_error(response, failure)) return;
  send_scram_login(*response);
}

const Bytes& NodeClient::salted_password(ByteView salt, uint32_t iterations) {
  bool cached = !salted_password_.empty() && iterations == salted_for_iterations_ &&
                std::equal(salt.begin(), salt.end(), salted_for_salt_.begin(), salted_for_salt_.end());
  if (!cached) {
    security::wipe(salted_password_);
    // Blocks the loop once per process and account (0.2-0.5 s at 600,000 iterations).
    salted_password_ = security::scram::salted_password(options_.password, salt, iterations);
    salted_for_salt_.assign(salt.begin(), salt.end());
    salted_for_iterations_ = iterations;
  }
  return salted_password_;
}

void NodeClient::send_scram_login(const proto::Message& server_first_response) {
  namespace scram = security::scram;
  const auto* attribute = server_first_response.find(proto::attr::scram_server_first);
  std::string server_first = attribute ? std::string(proto::read_string(*attribute)) : std::string();
  auto parsed = scram::parse_server_first(server_first);
  if (!parsed) {
    stop(ClientFailure::protocol, std::string("login: the node's SCRAM answer: ") + std::string(parsed.error().detail));
    return;
  }
  // The node's nonce extends ours; anything else is a replay or a confused node.
  if (!parsed->nonce.starts_with(client_nonce_) || parsed->nonce.size() <= client_nonce_.size()) {
    stop(ClientFailure::protocol, "login: the node's SCRAM nonce does not extend ours");
    return;
  }
  const Bytes& salted = salted_password(parsed->salt, parsed->iterations);
  auth_message_ = scram::auth_message(scram::build_client_first_bare(options_.user_id, client_nonce_), server_first,
                                      scram::build_client_final_without_proof(parsed->nonce));
  std::string final_message = scram::build_client_final(parsed->nonce, scram::client_proof(salted, auth_message_));
  password_login_in_flight_ = false;
  auto sent = link_->request(
      proto::method::login,
      [&](proto::MessageBuilder& b) {
        b.add_string(proto::attr::scram_client_final, final_message);
        add_login_details(b);
      },
      [this](const proto::Message* response, transport::RequestFailure failure) {
        on_login_response(response, failure);
      });
  if (!sent) link_->drop("login: " + sent.error().detail, std::nullopt, transport::ReconnectingLink::Closing::at_once);
}

void NodeClient::send_password_login() {
  password_login_in_flight_ = true;
  auto sent = link_->request(
      proto::method::login,
      [&](proto::MessageBuilder& b) {
        b.add_string(proto::attr::user_id, options_.user_id);
        b.add_string(proto::attr::password, options_.password);
        add_login_details(b);
      },
      [this](const proto::Message* response, transport::RequestFailure failure) {
        on_login_response(response, failure);
      });
  if (!sent) link_->drop("login: " + sent.error().detail, std::nullopt, transport::ReconnectingLink::Closing::at_once);
}

void NodeClient::send_token_login() {
  auto sent = link_->request(
      proto::method::login_resume,
      [&](proto::MessageBuilder& b) {
        b.add_string(proto::attr::user_id, options_.user_id);
        b.add(proto::attr::resume_token, resume_token_);
        add_login_details(b);
      },
      [this](const proto::Message* response, transport::RequestFailure failure) {
        on_token_login_response(response, failure);
      });
  if (!sent) link_->drop("login: " + sent.error().detail, std::nullopt, transport::ReconnectingLink::Closing::at_once);
}

void NodeClient::on_token_login_response(const proto::Message* response, transport::RequestFailure failure) {
  if (response != nullptr && response->message_class == proto::MessageClass::error) {
    auto code = response->find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    // Refused (expired, revoked), or a node that does not know login_resume: SCRAM, on this link.
    // (An older node answers an unknown method 400.)
    if (parsed && (parsed->code == proto::error::unauthenticated || parsed->code == proto::error::bad_request)) {
      security::wipe(resume_token_);
      resume_token_.clear();
      send_login_begin();
      return;
    }
  }
  if (handled_login_error(response, failure)) return;
  complete_login(*response, true);
}

bool NodeClient::handled_login_error(const proto::Message* response, transport::RequestFailure failure) {
  if (response == nullptr) {
    // A lost link or stop() says so itself; only silence needs acting on.
    if (failure == transport::RequestFailure::timed_out)
      link_->drop(std::string("login: ") + std::string(transport::describe(failure)), std::nullopt,
                  transport::ReconnectingLink::Closing::at_once);
    return true;
  }
  if (response->message_class != proto::MessageClass::error) return false;
  auto code = response->find(proto::attr::error_code);
  auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
  uint16_t number = parsed ? parsed->code : 0;
  std::string reason = parsed ? std::string(parsed->reason) : "malformed error";
  if (number == proto::error::too_many_attempts) {
    if (const auto* retry = response->find(proto::attr::retry_after))
      if (auto seconds = proto::read_u32(*retry)) reason += " (retry in " + std::to_string(*seconds) + " s)";
    stop(ClientFailure::rate_limited, reason);
  } else if (number == proto::error::unauthenticated) {
    stop(ClientFailure::unauthenticated, reason);
  } else if (number == proto::error::unavailable && options_.reconnect) {
    link_->drop(reason, std::nullopt, transport::ReconnectingLink::Closing::at_once);  // node trouble: retry later
  } else {
    stop(ClientFailure::protocol, std::to_string(number) + " " + reason);
  }
  return true;
}

void NodeClient::on_login_response(const proto::Message* response, transport::RequestFailure failure) {
  bool was_password_login = password_login_in_flight_;
  password_login_in_flight_ = false;
  if (response != nullptr && response->message_class == proto::MessageClass::error && !was_password_login &&
      options_.password_fallback && !scram_succeeded_) {
    auto code = response->find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    if (parsed && parsed->code == proto::error::unauthenticated) {
      send_password_login();  // maybe an account still holding a scrypt hash
      return;
    }
  }
  if (handled_login_error(response, failure)) return;
  if (!was_password_login) {
    const auto* final_attribute = response->find(proto::attr::scram_server_final);
    auto server_final = security::scram::parse_server_final(final_attribute ? proto::read_string(*final_attribute) : "");
    if (!server_final || !server_final->error.empty() ||
        !security::scram::verify_server_signature(salted_password_, auth_message_, server_final->verifier)) {
      stop(ClientFailure::protocol,
           "login: the node could not prove it holds this account's keys (SCRAM server signature); not trusting it");
      return;
    }
    scram_succeeded_ = true;
  }
  complete_login(*response, false);
}

void NodeClient::complete_login(const proto::Message& response_message, bool resumed) {
  const proto::Message* response = &response_message;
  security::wipe(resume_token_);
  resume_token_.clear();
  if (const auto* token = response->find(proto::attr::resume_token); token && token->value.size() <= 256)
    resume_token_.assign(token->value.begin(), token->value.end());
  LoginInfo info;
  info.resumed = resumed;
  if (const auto* mapped = response->find(proto::attr::xor_mapped_address))
    if (auto address = proto::read_xor_address(*mapped, *response)) info.observed = *address;
  info.local = link_->local_address();
  if (const auto* interval = response->find(proto::attr::keepalive_interval))
    if (auto seconds = proto::read_u32(*interval); seconds && *seconds > 0) keepalive_interval_s_ = *seconds;
  info.keepalive_interval_s = keepalive_interval_s_;
  logged_in_ = true;
  link_->established(uint64_t{keepalive_interval_s_} * 1000);
  if (events_.on_logged_in) events_.on_logged_in(info);
}

void NodeClient::request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
                         ResponseHandler handler) {
  if (!link_ || stopped_) {
    handler(nullptr, "not connected");
    return;
  }
  auto shared = std::make_shared<ResponseHandler>(std::move(handler));
  auto sent = link_->request(method, fill, [this, shared](const proto::Message* response,
                                                          transport::RequestFailure failure) {
    if (response != nullptr) {
      (*shared)(response, {});
      return;
    }
    // A lost link explains itself better ("peer closed the connection").
    std::string why = failure == transport::RequestFailure::link_lost ? link_->last_loss_detail()
                                                                       : std::string(transport::describe(failure));
    (*shared)(nullptr, why);
  });
  if (!sent) (*shared)(nullptr, sent.error().detail);
}

bool NodeClient::send_message(ByteView message) {
  if (!link_ || stopped_) return false;
  return link_->send(message).has_value();
}

void NodeClient::on_message(const proto::Message& message) {
  if (message.message_class == proto::MessageClass::indication && message.method == proto::method::notice) {
    std::string reason = "notice";
    if (const auto* text = message.find(proto::attr::notice_reason)) reason = proto::read_string(*text);
    std::optional<uint32_t> code;
    if (const auto* attribute = message.find(proto::attr::notice_code)) code = proto::read_u32(*attribute);
    // A notice without NOTICE-CODE comes from a node older than the attribute;
    // its text is all there is to go by.
    if (!code) code = reason == "logged in elsewhere" ? proto::notice_code::displaced
                      : reason == "logged out"        ? proto::notice_code::logged_out
                                                      : 0;
    if (*code == proto::notice_code::displaced) stop(ClientFailure::displaced, reason);
    else if (*code == proto::notice_code::logged_out) stop(ClientFailure::logged_out, reason);
    // Other notices (expired presence) are followed by the node closing the
    // link, and the reconnect logic logs in again.
    return;
  }
  if (message.message_class == proto::MessageClass::indication) {
    if (events_.on_node_indication) events_.on_node_indication(message);
    return;
  }
  if (message.message_class == proto::MessageClass::request && events_.on_node_request)
    events_.on_node_request(message);
}

void NodeClient::on_lost(const transport::LinkLoss& loss) {
  logged_in_ = false;
  if (stopped_) return;
  if (!loss.retry_in_ms) {
    stop(loss.reason == transport::CloseReason::tls ? ClientFailure::tls : ClientFailure::network, loss.detail);
    return;
  }
  if (!events_.on_link_lost) return;
  if (options_.other_nodes.empty()) {
    events_.on_link_lost(loss.detail, *loss.retry_in_ms);
  } else {
    events_.on_link_lost(loss.detail + "; next node " + loss.next_address, *loss.retry_in_ms);
  }
}

void NodeClient::stop(ClientFailure failure, std::string detail) {
  if (stopped_) return;
  stopped_ = true;
  logged_in_ = false;
  // Requests in flight fail with "stopped"; the connection sends close_notify
  // and finishes closing on the loop.
  if (link_) link_->stop();
  if (events_.on_stopped) events_.on_stopped(failure, detail);
}

}  // namespace tsunagu::terminal
