// `tsunagu listen --lan DIR`: a LAN terminal does not log in to the node; it
// listens on TLS (default port 7480) for its LAN agent, which connects when
// the node rings the terminal's extension. The terminal presents the
// certificate the agent issued it (DIR/terminal.crt, terminal.key) and accepts
// only a peer whose certificate comes from the same LAN CA (DIR/ca.crt) and
// names the agent: other terminals of that LAN cannot ring it either.
// One TLS connection per call; ring requests and call events arrive on it
// exactly as they do on a node link. At most 32 connections at once, at most 4
// not yet authenticated from one address, only from the agent's addresses when
// given (--agent-address; RingAdmission), and one that has not finished TLS
// with the agent's certificate in 10 s is closed.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"
#include "proto/stun_message.hpp"
#include "security/tls_session.hpp"
#include "terminal/ring_admission.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::terminal {

inline constexpr uint16_t default_lan_port = 7480;

struct LanServerOptions {
  std::string bundle_directory;  // terminal.crt, terminal.key, ca.crt
  proto::SocketAddress listen;   // default 0.0.0.0:7480
  std::vector<proto::SocketAddress> agent_addresses;  // --agent-address; empty: any address
};

class LanRingServer {
 public:
  using Reply = std::function<void(ByteView message)>;
  struct Events {
    // A request from the agent (a ring); `reply` answers on the same connection.
    std::function<void(const proto::Message& request, Reply reply)> on_request;
    std::function<void(const proto::Message& indication)> on_indication;
  };

  static Expected<std::unique_ptr<LanRingServer>, std::string> start(uv_loop_t* loop, const LanServerOptions& options,
                                                                     Events events);
  LanRingServer(const LanRingServer&) = delete;
  LanRingServer& operator=(const LanRingServer&) = delete;
  ~LanRingServer();

  // Stops listening and closes every connection; the loop can then end.
  void stop();
  const proto::SocketAddress& address() const { return address_; }
  const std::string& common_name() const { return common_name_; }

 private:
  LanRingServer(uv_loop_t* loop, Events events, RingAdmission::Policy admission)
      : loop_(loop), events_(std::move(events)), admission_(std::move(admission)) {}
  void on_connection();
  void on_message(transport::TlsLink& link, ByteView bytes);
  // Closes connections that have not completed TLS with our agent in time.
  void sweep();

  uv_loop_t* loop_;
  Events events_;
  std::shared_ptr<security::TlsContext> tls_;
  uv_tcp_t* listener_ = nullptr;
  proto::SocketAddress address_;
  std::string common_name_;  // ours: terminal:EXT
  std::map<uint64_t, transport::TlsLink*> links_;  // every open connection
  std::set<uint64_t> authenticated_;                // those whose peer is our agent
  std::map<uint64_t, uint64_t> opened_ms_;          // when each was accepted (uv_now)
  uv_timer_t* sweep_timer_ = nullptr;
  RingAdmission admission_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tsunagu::terminal
