#include "terminal/lan_ring_server.hpp"

#include <filesystem>
#include <vector>

#include "base/files.hpp"
#include "base/log.hpp"
#include "proto/signalling.hpp"
#include "security/certificates.hpp"
#include "security/lan_identity.hpp"

namespace tsunagu::terminal {
namespace {
constexpr int kBacklog = 16;
// A host on the LAN could otherwise hold connections open without ever
// finishing TLS until the terminal runs out of descriptors.
constexpr size_t kMaxConnections = 32;
constexpr size_t kMaxPendingPerSource = 4;
constexpr uint64_t kHandshakeTimeoutMs = 10'000;
}  // namespace

Expected<std::unique_ptr<LanRingServer>, std::string> LanRingServer::start(uv_loop_t* loop,
                                                                           const LanServerOptions& options,
                                                                           Events events) {
  namespace fs = std::filesystem;
  fs::path dir(options.bundle_directory);
  std::string certificate = (dir / "terminal.crt").string(), key = (dir / "terminal.key").string(),
              ca = (dir / "ca.crt").string();
  for (const auto& file : {certificate, key, ca})
    if (!fs::exists(file))
      return Unexpected(file + " is missing: the LAN agent writes this bundle with `tsunagu-lan-agent terminal issue EXT --out DIR`");
  auto pem = read_text_file(certificate);
  if (!pem) return Unexpected(pem.error());
  auto name = security::certificate_common_name(*pem);
  if (!name) return Unexpected(certificate + ": " + name.error().detail);
  if (!name->starts_with(security::lan_terminal_name_prefix))
    return Unexpected(certificate + " is not a LAN terminal certificate (its name is \"" + *name + "\")");

  security::TlsContext::ServerOptions tls_options;
  tls_options.certificate_chain_file = certificate;
  tls_options.private_key_file = key;
  tls_options.client_ca_file = ca;  // the agent must present a certificate from our LAN CA
  auto tls = security::TlsContext::server(tls_options);
  if (!tls) return Unexpected("TLS (" + certificate + "): " + tls.error().detail);

  RingAdmission::Policy admission{options.agent_addresses, kMaxConnections, kMaxPendingPerSource};
  std::unique_ptr<LanRingServer> server(new LanRingServer(loop, std::move(events), std::move(admission)));
  server->tls_ = *tls;
  server->common_name_ = *name;
  server->listener_ = new uv_tcp_t;
  uv_tcp_init(loop, server->listener_);
  server->listener_->data = server.get();
  sockaddr_storage address{};
  transport::to_sockaddr(options.listen, &address);
  int rc = uv_tcp_bind(server->listener_, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server->listener_), kBacklog, [](uv_stream_t* s, int status) {
      if (status < 0) {
        log::warn() << "accept: " << uv_strerror(status);
        return;
      }
      static_cast<LanRingServer*>(s->data)->on_connection();
    });
  if (rc != 0) {
    std::string error = "cannot listen on " + options.listen.to_string() + ": " + uv_strerror(rc);
    server->stop();
    return Unexpected(error);
  }
  server->sweep_timer_ = new uv_timer_t;
  uv_timer_init(loop, server->sweep_timer_);
  server->sweep_timer_->data = server.get();
  uv_timer_start(server->sweep_timer_, [](uv_timer_t* t) { static_cast<LanRingServer*>(t->data)->sweep(); }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(server->sweep_timer_));
  sockaddr_storage bound{};
  int length = sizeof(bound);
  uv_tcp_getsockname(server->listener_, reinterpret_cast<sockaddr*>(&bound), &length);
  server->address_ = transport::from_sockaddr(reinterpret_cast<const sockaddr*>(&bound));
  return server;
}

LanRingServer::~LanRingServer() {
  *alive_ = false;
  stop();
}

void LanRingServer::on_connection() {
  transport::LinkCallbacks callbacks;
  callbacks.on_ready = [this, alive = alive_](transport::TlsLink& link) {
    if (!*alive) return;
    auto name = link.peer_common_name();
    if (!name || *name != security::lan_agent_common_name) {
      log::warn() << "refused a connection from " << link.peer_address().to_string()
                  << ": its certificate does not name our LAN agent";
      link.abort("not our LAN agent");
      return;
    }
    authenticated_.insert(link.id());
    admission_.authenticated(link.peer_address());
  };
  callbacks.on_message = [this, alive = alive_](transport::TlsLink& link, ByteView bytes) {
    if (*alive) on_message(link, bytes);
  };
  callbacks.on_closed = [this, alive = alive_](transport::TlsLink& link, std::string_view) {
    if (!*alive) return;
    if (links_.erase(link.id()) > 0) admission_.closed(link.peer_address(), authenticated_.contains(link.id()));
    authenticated_.erase(link.id());
    opened_ms_.erase(link.id());
  };
  auto* link = transport::TlsLink::accept(reinterpret_cast<uv_stream_t*>(listener_), tls_, std::move(callbacks));
  if (link == nullptr) return;
  if (auto decision = admission_.open(link->peer_address()); decision != RingAdmission::Decision::admit) {
    log::warn() << "refused a connection from " << link->peer_address().to_string() << ": "
                << RingAdmission::describe(decision);
    link->abort(RingAdmission::describe(decision));
    return;
  }
  links_[link->id()] = link;
  opened_ms_[link->id()] = uv_now(loop_);
}

void LanRingServer::sweep() {
  uint64_t now = uv_now(loop_);
  std::vector<transport::TlsLink*> late;
  for (const auto& [id, link] : links_)
    if (!authenticated_.contains(id) && opened_ms_.contains(id) && now - opened_ms_[id] > kHandshakeTimeoutMs)
      late.push_back(link);
  for (auto* link : late) {
    log::warn() << "closed a connection from " << link->peer_address().to_string()
                << ": no TLS handshake with our agent's certificate within " << kHandshakeTimeoutMs / 1000 << " s";
    link->abort("handshake timeout");
  }
}

void LanRingServer::on_message(transport::TlsLink& link, ByteView bytes) {
  if (!authenticated_.contains(link.id())) return;
  auto decoded = proto::decode(bytes);
  if (!decoded) return;
  const proto::Message& m = decoded->message;
  if (m.message_class == proto::MessageClass::request) {
    if (!events_.on_request) return;
    uint64_t id = link.id();
    events_.on_request(m, [this, id, alive = alive_](ByteView reply) {
      if (!*alive) return;
      if (auto it = links_.find(id); it != links_.end()) it->second->send(reply);
    });
  } else if (m.message_class == proto::MessageClass::indication) {
    if (events_.on_indication) events_.on_indication(m);
  }
}

void LanRingServer::stop() {
  if (listener_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    listener_ = nullptr;
  }
  if (sweep_timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(sweep_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    sweep_timer_ = nullptr;
  }
  auto links = std::move(links_);
  links_.clear();
  authenticated_.clear();
  opened_ms_.clear();
  for (auto& [id, link] : links) link->close("terminal stopping");
}

}  // namespace tsunagu::terminal
