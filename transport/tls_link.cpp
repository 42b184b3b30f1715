#include "transport/tls_link.hpp"

#include <netinet/in.h>

#include <atomic>
#include <cstring>
#include <utility>

namespace tsunagu::transport {
namespace {

std::atomic<uint64_t> next_link_id{1};

// One read buffer per thread: reads are handled to completion inside read_cb,
// so idle links hold no buffer of their own.
thread_local std::byte read_buffer[64 * 1024];

struct WriteRequest {
  uv_write_t request{};
  Bytes bytes;
  TlsLink* link = nullptr;
};

}  // namespace

proto::SocketAddress from_sockaddr(const sockaddr* address) {
  proto::SocketAddress out;
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    out.family = proto::SocketAddress::Family::ipv4;
    std::memcpy(out.ip.data(), &in->sin_addr, 4);
    out.port = ntohs(in->sin_port);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    out.family = proto::SocketAddress::Family::ipv6;
    std::memcpy(out.ip.data(), &in6->sin6_addr, 16);
    out.port = ntohs(in6->sin6_port);
  }
  return out;
}

void to_sockaddr(const proto::SocketAddress& address, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (address.family == proto::SocketAddress::Family::ipv4) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, address.ip.data(), 4);
    in->sin_port = htons(address.port);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, address.ip.data(), 16);
    in6->sin6_port = htons(address.port);
  }
}

TlsLink::TlsLink(uv_loop_t* loop, std::shared_ptr<security::TlsContext> context, security::TlsSession::Role role,
                 std::string_view verify_name, LinkCallbacks callbacks, LinkLimits limits)
    : id_(next_link_id++),
      tls_(security::TlsSession::create(std::move(context), role, verify_name)),
      frames_(limits.max_message_size),
      callbacks_(std::move(callbacks)),
      limits_(limits) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

TlsLink* TlsLink::accept(uv_stream_t* server, std::shared_ptr<security::TlsContext> context, LinkCallbacks callbacks,
                         LinkLimits limits) {
  auto* link = new TlsLink(server->loop, std::move(context), security::TlsSession::Role::server, {},
                           std::move(callbacks), limits);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&link->tcp_)) != 0) {
    link->discard();
    return nullptr;
  }
  uv_tcp_nodelay(&link->tcp_, 1);
  link->record_addresses();
  link->start_reading();
  return link;
}

Expected<TlsLink*, ConnectFailure> TlsLink::connect(uv_loop_t* loop, const proto::SocketAddress& address,
                                                    std::shared_ptr<security::TlsContext> context,
                                                    std::string verify_name, LinkCallbacks callbacks,
                                                    LinkLimits limits) {
  auto* link = new TlsLink(loop, std::move(context), security::TlsSession::Role::client, verify_name,
                           std::move(callbacks), limits);
  link->peer_ = address;
  link->connect_request_.data = link;
  sockaddr_storage target{};
  to_sockaddr(address, &target);
  int rc = uv_tcp_connect(&link->connect_request_, &link->tcp_, reinterpret_cast<const sockaddr*>(&target), connect_cb);
  if (rc != 0) {
    // Returned, not called back: the caller has no link to forget.
    link->discard();
    return Unexpected(ConnectFailure{rc, std::string("connect: ") + uv_strerror(rc)});
  }
  return link;
}

void TlsLink::discard() {
  // No callback runs; the handle still has to close, and close_cb deletes the
  // link a loop turn later.
  callbacks_ = {};
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
}

void TlsLink::record_addresses() {
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    peer_ = from_sockaddr(reinterpret_cast<sockaddr*>(&address));
  length = sizeof address;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    local_ = from_sockaddr(reinterpret_cast<sockaddr*>(&address));
}

void TlsLink::connect_cb(uv_connect_t* request, int status) {
  auto* link = static_cast<TlsLink*>(request->data);
  if (link->closing_) return;
  if (status != 0) {
    link->finish(CloseCause::connect_failed, std::string("connect: ") + uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&link->tcp_, 1);
  link->record_addresses();
  link->start_reading();
  if (auto started = link->tls_->start(); !started) {
    link->finish(CloseCause::tls, "TLS: " + started.error().detail);
    return;
  }
  link->flush_output();
}

void TlsLink::start_reading() {
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_cb, read_cb);
  if (rc != 0) finish(CloseCause::network, std::string("read: ") + uv_strerror(rc));
}

void TlsLink::alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = reinterpret_cast<char*>(read_buffer);
  buf->len = sizeof read_buffer;
}

void TlsLink::read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  static_cast<TlsLink*>(stream->data)->on_read(nread, buf);
}

void TlsLink::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (closing_) return;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread == UV_EOF) finish(CloseCause::peer_closed, "peer closed the connection");
    else finish(CloseCause::network, std::string("read: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  // Shared by every link of this thread (reads never nest): no allocation per
  // read, and no buffer held by an idle link.
  thread_local Bytes plaintext;
  plaintext.clear();
  auto received = tls_->receive(ByteView(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)), plaintext);
  flush_output();  // handshake records and alerts
  if (!received) {
    finish(CloseCause::tls, "TLS: " + received.error().detail);
    return;
  }
  if (!was_ready_ && tls_->handshake_complete()) {
    was_ready_ = true;
    if (callbacks_.on_ready) callbacks_.on_ready(*this);
    if (closing_) return;
  }
  if (!plaintext.empty()) {
    frames_.append(plaintext);
    while (!closing_) {
      auto next = frames_.next();
      if (!next) {
        finish(CloseCause::framing, std::string("framing: ") + next.error().detail);
        return;
      }
      if (!next->has_value()) break;
      if (callbacks_.on_message) callbacks_.on_message(*this, **next);
    }
  }
  if (!closing_ && tls_->peer_closed()) finish(CloseCause::peer_closed, "peer sent close_notify");
}

void TlsLink::send(ByteView message) {
  if (closing_ || close_after_flush_) return;
  if (auto sent = tls_->send(message); !sent) {
    finish(CloseCause::tls, "TLS: " + sent.error().detail);
    return;
  }
  flush_output();
}

void TlsLink::flush_output() {
  if (!tls_->has_output()) return;
  write_raw(tls_->take_output());
}

void TlsLink::write_raw(Bytes bytes) {
  if (closing_) return;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  // Most writes fit the socket buffer: try without allocating a request.
  if (queued_output_ == 0) {
    int written = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
    if (written == static_cast<int>(bytes.size())) return;
    if (written > 0) bytes.erase(bytes.begin(), bytes.begin() + written);
    else if (written != UV_EAGAIN) {
      finish(CloseCause::network, std::string("write: ") + uv_strerror(written));
      return;
    }
  }
  if (queued_output_ + bytes.size() > limits_.max_queued_output) {
    finish(CloseCause::peer_not_reading, "peer is not reading (output queue full)");
    return;
  }
  auto* request = new WriteRequest;
  request->bytes = std::move(bytes);
  request->link = this;
  request->request.data = request;
  queued_output_ += request->bytes.size();
  buf = uv_buf_init(reinterpret_cast<char*>(request->bytes.data()), static_cast<unsigned>(request->bytes.size()));
  int rc = uv_write(&request->request, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, write_cb);
  if (rc != 0) {
    queued_output_ -= request->bytes.size();
    delete request;
    finish(CloseCause::network, std::string("write: ") + uv_strerror(rc));
  }
}

void TlsLink::write_cb(uv_write_t* request, int status) {
  auto* write = static_cast<WriteRequest*>(request->data);
  TlsLink* link = write->link;
  link->queued_output_ -= write->bytes.size();
  delete write;
  if (link->closing_) return;
  if (status != 0) {
    link->finish(CloseCause::network, std::string("write: ") + uv_strerror(status));
    return;
  }
  if (link->close_after_flush_ && link->queued_output_ == 0) link->finish(CloseCause::local, link->close_reason_);
}

void TlsLink::close(std::string_view reason) {
  if (closing_ || close_after_flush_) return;
  tls_->close();
  flush_output();
  if (closing_) return;
  if (queued_output_ == 0) {
    finish(CloseCause::local, std::string(reason));
  } else {
    close_after_flush_ = true;
    close_reason_ = reason;
  }
}

void TlsLink::abort(std::string_view reason) { finish(CloseCause::local, std::string(reason)); }

void TlsLink::finish(CloseCause cause, std::string reason) {
  if (closing_) return;
  closing_ = true;
  close_cause_ = cause;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  auto on_closed = std::move(callbacks_.on_closed);
  callbacks_ = {};
  if (on_closed) on_closed(*this, reason);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
}

void TlsLink::close_cb(uv_handle_t* handle) {
  // Pending writes have completed (cancelled) before the close callback runs.
  delete static_cast<TlsLink*>(handle->data);
}

}  // namespace tsunagu::transport
