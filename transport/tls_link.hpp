// A TLS link over a libuv TCP handle, carrying STUN-format messages. The link
// owns itself: it is deleted after its handle closes, and on_closed is the last
// callback it makes. Used by the node (accepted links) and the terminal and
// agent (outbound links).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/frame_reader.hpp"
#include "proto/socket_address.hpp"
#include "security/tls_session.hpp"

namespace tsunagu::transport {

class TlsLink;
class OutputBatcher;

// A connection that could not even be started (libuv refused it at once).
struct ConnectFailure {
  int uv_code = 0;     // the libuv error (UV_EINVAL, UV_ENETUNREACH, ...)
  std::string detail;  // "connect: network is unreachable", for people
};

// What ended a link, for code that decides (reconnect, exit code); the
// on_closed reason text is for people.
enum class CloseCause {
  local,             // close() or abort() on this side
  connect_failed,    // the TCP connection was not established
  peer_closed,       // EOF or close_notify from the peer
  network,           // a read or write error on an established connection
  tls,               // handshake or record failure (an untrusted certificate, ...)
  framing,           // the peer sent a message over the size limit or a bad frame
  peer_not_reading,  // our output queue reached its limit
};

struct LinkCallbacks {
  std::function<void(TlsLink&)> on_ready;  // TLS handshake complete
  std::function<void(TlsLink&, ByteView message)> on_message;
  // The link is gone after this returns; reason is for logs, close_cause()
  // tells why.
  std::function<void(TlsLink&, std::string_view reason)> on_closed;
};

struct LinkLimits {
  size_t max_message_size = proto::default_max_message_size;
  // A peer that stops reading is cut off rather than buffered without bound.
  size_t max_queued_output = 1 << 20;
};

class TlsLink {
 public:
  // Accepts one pending connection from a listening handle. nullptr on failure
  // (the connection is refused and closed).
  static TlsLink* accept(uv_stream_t* server, std::shared_ptr<security::TlsContext> context,
                         LinkCallbacks callbacks, LinkLimits limits = {});
  // The same with callbacks shared by every link of a listener: a server
  // holding many links keeps one copy, not one per link.
  static TlsLink* accept(uv_stream_t* server, std::shared_ptr<security::TlsContext> context,
                         std::shared_ptr<const LinkCallbacks> callbacks, LinkLimits limits = {});
  // Starts connecting. As with uv_tcp_connect, a failure is reported once:
  // either returned from this call (no callback of `callbacks` ever runs, and
  // nothing is left for the caller to close), or later through on_closed.
  static Expected<TlsLink*, ConnectFailure> connect(uv_loop_t* loop, const proto::SocketAddress& address,
                          std::shared_ptr<security::TlsContext> context, std::string verify_name,
                          LinkCallbacks callbacks, LinkLimits limits = {});

  TlsLink(const TlsLink&) = delete;
  TlsLink& operator=(const TlsLink&) = delete;

  // Sends one encoded message (queued until the handshake completes). Messages
  // sent in one loop turn leave together before the loop polls again, as one
  // TLS record and one write(): a turn that answers several requests pays the
  // record and the system call once.
  void send(ByteView message);
  // Sends close_notify, then closes the connection; on_closed follows.
  void close(std::string_view reason);
  // Closes at once, without close_notify.
  void abort(std::string_view reason);

  uint64_t id() const { return id_; }
  const proto::SocketAddress& peer_address() const { return peer_; }
  const proto::SocketAddress& local_address() const { return local_; }
  bool ready() const { return tls_->handshake_complete(); }
  // Why the link ended; `local` until it does.
  CloseCause close_cause() const { return close_cause_; }
  std::optional<std::string> peer_common_name() const { return tls_->peer_common_name(); }
  std::optional<std::string> peer_serial() const { return tls_->peer_serial(); }
  void* user_data = nullptr;

 private:
  TlsLink(uv_loop_t* loop, std::shared_ptr<security::TlsContext> context, security::TlsSession::Role role,
          std::string_view verify_name, std::shared_ptr<const LinkCallbacks> callbacks, LinkLimits limits);
  ~TlsLink() = default;
  void start_reading();
  void on_read(ssize_t nread, const uv_buf_t* buf);
  friend class OutputBatcher;
  // Encrypts and writes the messages send() gathered this turn.
  void write_batch(ByteView plaintext);
  void flush_output();
  void write_raw(ByteView bytes);
  void finish(CloseCause cause, std::string reason);
  void discard();
  void record_addresses();

  static void alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void connect_cb(uv_connect_t* request, int status);
  static void write_cb(uv_write_t* request, int status);
  static void close_cb(uv_handle_t* handle);

  // An idle server link is mostly this object and OpenSSL's: what only some
  // links need (the connect request, a close reason) is allocated when used,
  // and the callbacks can be shared.
  uv_tcp_t tcp_{};
  uint64_t id_;
  std::unique_ptr<security::TlsSession> tls_;
  proto::FrameReader frames_;
  std::shared_ptr<const LinkCallbacks> callbacks_;
  LinkLimits limits_;
  proto::SocketAddress peer_;
  proto::SocketAddress local_;
  OutputBatcher* batcher_ = nullptr;  // shared by every link of the loop
  size_t queued_output_ = 0;
  std::unique_ptr<std::string> close_reason_;  // set while a close waits for queued output
  int32_t batch_slot_ = -1;            // this link's place in the batcher this turn, -1 when none
  CloseCause close_cause_ = CloseCause::local;
  bool was_ready_ = false;
  bool closing_ = false;
  bool close_after_flush_ = false;
};

// sockaddr conversions shared by the daemons.
proto::SocketAddress from_sockaddr(const sockaddr* address);
void to_sockaddr(const proto::SocketAddress& address, sockaddr_storage* out);

}  // namespace tsunagu::transport
