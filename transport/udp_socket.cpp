#include "transport/udp_socket.hpp"

#include <string>

#include "transport/tls_link.hpp"

namespace tsunagu::transport {
namespace {
// 16 slots of 64 KiB: libuv splits a buffer this size into recvmmsg slots.
constexpr size_t receive_buffer_size = 16 * 64 * 1024;
thread_local std::unique_ptr<char[]> receive_buffer;
}  // namespace

Expected<std::unique_ptr<UdpSocket>, std::string> UdpSocket::bind(uv_loop_t* loop, const proto::SocketAddress& address,
                                                                  OnDatagram on_datagram) {
  std::unique_ptr<UdpSocket> socket(new UdpSocket);
  socket->on_datagram_ = std::move(on_datagram);
  socket->handle_ = new uv_udp_t;
  sockaddr_storage storage{};
  to_sockaddr(address, &storage);
  int rc = uv_udp_init_ex(loop, socket->handle_, storage.ss_family | UV_UDP_RECVMMSG);
  if (rc != 0) {
    delete socket->handle_;
    socket->handle_ = nullptr;
    return Unexpected(std::string("udp init: ") + uv_strerror(rc));
  }
  socket->handle_->data = socket.get();
  rc = uv_udp_bind(socket->handle_, reinterpret_cast<const sockaddr*>(&storage), 0);
  if (rc == 0) rc = uv_udp_recv_start(socket->handle_, alloc_cb, recv_cb);
  if (rc != 0) return Unexpected("udp bind " + address.to_string() + ": " + uv_strerror(rc));
  return socket;
}

UdpSocket::~UdpSocket() {
  if (handle_ == nullptr) return;
  uv_udp_recv_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_udp_t*>(h); });
}

void UdpSocket::alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
  if (!receive_buffer) receive_buffer.reset(new char[receive_buffer_size]);
  buf->base = receive_buffer.get();
  buf->len = receive_buffer_size;
}

void UdpSocket::recv_cb(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
  auto* self = static_cast<UdpSocket*>(handle->data);
  if (self == nullptr || nread <= 0 || from == nullptr) return;  // error, or end of a recvmmsg batch
  (void)flags;
  self->on_datagram_(ByteView(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)), from);
}

bool UdpSocket::send(ByteView datagram, const sockaddr* to) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(datagram.data())),
                             static_cast<unsigned>(datagram.size()));
  int rc = uv_udp_try_send(handle_, &buf, 1, to);
  if (rc < 0) {
    ++dropped_sends_;
    return false;
  }
  return true;
}

proto::SocketAddress UdpSocket::local_address() const {
  sockaddr_storage storage{};
  int length = sizeof storage;
  uv_udp_getsockname(handle_, reinterpret_cast<sockaddr*>(&storage), &length);
  return from_sockaddr(reinterpret_cast<sockaddr*>(&storage));
}

}  // namespace tsunagu::transport
