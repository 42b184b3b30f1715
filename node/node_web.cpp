// The node's HTTPS listener: moves requests between web::HttpServer and the
// node's parts. /api/ goes to WebApi (which speaks to NodeCore like a
// terminal), /api/events is the session's WebSocket, /metrics is the
// Prometheus text, everything else a page built into the binary.
#include <nlohmann/json.hpp>

#include "base/files.hpp"
#include "base/log.hpp"
#include "pages/assets.hpp"
#include "node/node_daemon.hpp"
#include "web/cookies.hpp"

namespace tsunagu::rendezvous {
namespace {

// The pages run only their own files: no inline script or style, no framing.
constexpr std::string_view kPageSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";

web::HttpResponse json_error(int status, std::string_view code, std::string_view message) {
  web::HttpResponse response;
  response.status = status;
  response.headers.add("content-type", "application/json");
  response.headers.add("cache-control", "no-store");
  response.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
  return response;
}

bool from_loopback(const web::HttpRequest& request) {
  const std::string& client = request.client_address;
  return client.starts_with("127.") || client.starts_with("[::1]:") || client.starts_with("[::ffff:127.");
}

std::optional<std::string> bearer_token(const web::HttpRequest& request) {
  const std::string* header = request.headers.find("authorization");
  constexpr std::string_view scheme = "Bearer ";
  if (header == nullptr || header->size() <= scheme.size() || !header->starts_with(scheme)) return std::nullopt;
  return header->substr(scheme.size());
}

// Cross-site WebSocket hijacking: browsers send Origin on every WebSocket
// handshake; one naming another site is refused even with a valid cookie.
bool same_origin(const web::HttpRequest& request) {
  const std::string* origin = request.headers.find("origin");
  if (origin == nullptr) return true;  // not a browser
  const std::string* host = request.headers.find("host");
  return host != nullptr && *origin == "https://" + *host;
}

}  // namespace

std::optional<proto::SocketAddress> NodeDaemon::web_address() const {
  if (!web_server_) return std::nullopt;
  return web_server_->address();
}

std::optional<std::string> NodeDaemon::start_web() {
  if (!config_.web_listen) return std::nullopt;
  if (!config_.web_metrics_token_file.empty()) {
    auto token = read_text_file(config_.web_metrics_token_file, 4096);
    if (!token) return "web.metrics_token_file: " + token.error();
    metrics_token_ = *token;
    while (!metrics_token_.empty() && (metrics_token_.back() == '\n' || metrics_token_.back() == '\r' ||
                                       metrics_token_.back() == ' '))
      metrics_token_.pop_back();
    if (metrics_token_.size() < 16) return "web.metrics_token_file: the token must be at least 16 characters";
  }
  WebApiSettings settings;
  settings.session_idle_s = config_.web_session_idle_s;
  settings.session_max_s = config_.web_session_max_s;
  settings.max_recording_body = config_.web_max_body_kb * 1024;
  // The session's link must speak before the core's idle timeout closes it.
  settings.link_keepalive_s = std::max<uint32_t>(1, std::min<uint32_t>(30, config_.settings.idle_timeout_s / 2));
  web_api_ = std::make_unique<WebApi>(*core_, *store_, settings, config_.settings.random);
  // Pages, logins, the directory, profiles and voicemail go through the core, which reads PostgreSQL in
  // cluster mode; the admin endpoints that read accounts themselves are given the same store.
  if (shared_account_admin_) web_api_->use_shared_accounts(shared_account_admin_.get(), shared_voicemail_.get());

  web::HttpServerLimits limits;
  limits.max_connections = config_.web_max_connections;
  limits.parser.max_body_bytes = config_.web_max_body_kb * 1024;
  web::HttpHandlers handlers;
  handlers.on_request = [this](web::HttpRequest request, web::Responder respond) {
    web_request(std::move(request), std::move(respond));
  };
  handlers.on_websocket = [this](const web::HttpRequest& request,
                                 std::function<void(std::shared_ptr<web::WebSocketChannel>)>& accepted) {
    return web_socket(request, accepted);
  };
  auto server = web::HttpServer::listen(loop_, *config_.web_listen, tls_, limits, std::move(handlers));
  if (!server) return "web: " + server.error();
  web_server_ = std::move(*server);
  return std::nullopt;
}

void NodeDaemon::web_request(web::HttpRequest request, web::Responder respond) {
  if (stopping_) return respond(json_error(503, "unavailable", "the node is shutting down"));
  if (request.path == "/api" || request.path.starts_with("/api/")) {
    auto shared = std::make_shared<web::Responder>(std::move(respond));
    web_api_->handle(request, [shared](web::HttpResponse response) { (*shared)(std::move(response)); }, now());
    return;  // the core's answers go out from drain(), after this turn's commit
  }
  bool read_only = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/metrics") {
    if (!read_only) return respond(json_error(405, "method_not_allowed", "/metrics answers GET"));
    bool allowed = metrics_token_.empty() ? from_loopback(request)
                                          : web::tokens_equal(bearer_token(request).value_or(""), metrics_token_);
    if (!allowed)
      return respond(json_error(metrics_token_.empty() ? 403 : 401, metrics_token_.empty() ? "forbidden" : "unauthenticated",
                                metrics_token_.empty() ? "/metrics answers loopback clients unless web.metrics_token_file is set"
                                                       : "/metrics needs Authorization: Bearer <the metrics token>"));
    web::HttpResponse response;
    response.headers.add("content-type", "text/plain; version=0.0.4; charset=utf-8");
    response.headers.add("cache-control", "no-store");
    response.body = metrics_text(web_api_->session_count());
    return respond(std::move(response));
  }
  const pages::Asset* asset = web::path_is_safe(request.path) ? pages::find_asset(request.path) : nullptr;
  if (asset == nullptr) return respond(json_error(404, "not_found", "no such page"));
  if (!read_only) {
    auto refused = json_error(405, "method_not_allowed", "pages answer GET and HEAD");
    refused.headers.add("allow", "GET, HEAD");
    return respond(std::move(refused));
  }
  web::HttpResponse response;
  response.headers.add("content-type", std::string(asset->content_type));
  response.headers.add("content-security-policy", std::string(kPageSecurityPolicy));
  response.headers.add("cache-control", "no-cache");
  response.headers.add("x-frame-options", "DENY");
  response.body = std::string(asset->body);
  respond(std::move(response));
}

std::variant<web::WebSocketHandlers, web::HttpResponse> NodeDaemon::web_socket(
    const web::HttpRequest& request, std::function<void(std::shared_ptr<web::WebSocketChannel>)>& accepted) {
  if (request.path != "/api/events") return json_error(404, "not_found", "the event socket is /api/events");
  if (!same_origin(request)) return json_error(403, "forbidden", "the event socket is for this site's pages");
  auto session = web_api_->session_of(request, now());
  if (!session) return json_error(401, "unauthenticated", "log in first");
  uint64_t id = *session;
  // Which channel this handshake became, so that its close does not end a
  // newer socket's subscription.
  auto mine = std::make_shared<const web::WebSocketChannel*>(nullptr);
  accepted = [this, id, mine](std::shared_ptr<web::WebSocketChannel> channel) {
    if (auto old = event_sockets_[id].lock()) old->close(1000, "replaced by a newer event socket");
    event_sockets_[id] = channel;
    *mine = channel.get();
    // The subscription holds the channel (the server keeps none): it lives
    // until the socket closes (on_closed unsubscribes) or the session ends.
    web_api_->subscribe(id, [channel](std::string event) { channel->send_text(std::move(event)); }, now());
  };
  web::WebSocketHandlers handlers;
  // The dialing page places, answers and ends calls on it (docs/web.md, "Calls from the page").
  handlers.on_message = [this, id](std::string_view text) {
    if (web_api_) web_api_->socket_message(id, text, now());
  };
  handlers.on_closed = [this, id, mine] {
    auto it = event_sockets_.find(id);
    if (it == event_sockets_.end()) return;
    auto current = it->second.lock();
    if (current && current.get() != *mine) return;
    event_sockets_.erase(it);
    if (web_api_) web_api_->socket_closed(id, now());
  };
  return handlers;
}

}  // namespace tsunagu::rendezvous
