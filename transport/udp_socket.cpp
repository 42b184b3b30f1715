#include "transport/udp_socket.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
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
  // Bursts of requests overflow the default 208 KiB receive buffer; as root
  // SO_RCVBUFFORCE goes past net.core.rmem_max.
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(socket->handle_), &fd) == 0) {
    int size = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  socket->slots_.reset(new std::byte[batch_slots * slot_size]);
  socket->targets_.reset(new sockaddr_storage[batch_slots]);
  socket->flush_check_ = new uv_check_t;
  uv_check_init(loop, socket->flush_check_);
  socket->flush_check_->data = socket.get();
  uv_check_start(socket->flush_check_, [](uv_check_t* check) { static_cast<UdpSocket*>(check->data)->flush(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(socket->flush_check_));
  return socket;
}

UdpSocket::~UdpSocket() {
  if (flush_check_ != nullptr) {
    flush_check_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(flush_check_), [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  }
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
  if (self == nullptr) return;
  if (nread <= 0 || from == nullptr) {
    // The end of a recvmmsg batch (or nothing to read): send the replies.
    self->flush();
    return;
  }
  (void)flags;
  self->on_datagram_(ByteView(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)), from);
}

void UdpSocket::send(ByteView datagram, const sockaddr* to) {
  if (datagram.size() > slot_size) {  // never for STUN responses; send it alone
    uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(datagram.data())),
                               static_cast<unsigned>(datagram.size()));
    if (uv_udp_try_send(handle_, &buf, 1, to) < 0) ++dropped_sends_;
    return;
  }
  if (queued_ == batch_slots) flush();
  std::memcpy(slots_.get() + queued_ * slot_size, datagram.data(), datagram.size());
  lengths_[queued_] = datagram.size();
  std::memcpy(&targets_[queued_], to, to->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  ++queued_;
}

void UdpSocket::flush() {
  if (queued_ == 0 || handle_ == nullptr) return;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &fd) != 0) {
    dropped_sends_ += queued_;
    queued_ = 0;
    return;
  }
  mmsghdr messages[batch_slots];
  iovec vectors[batch_slots];
  std::memset(messages, 0, sizeof(mmsghdr) * queued_);
  for (size_t i = 0; i < queued_; ++i) {
    vectors[i].iov_base = slots_.get() + i * slot_size;
    vectors[i].iov_len = lengths_[i];
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
    messages[i].msg_hdr.msg_name = &targets_[i];
    messages[i].msg_hdr.msg_namelen =
        targets_[i].ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  }
  size_t sent = 0;
  while (sent < queued_) {
    int n = sendmmsg(fd, messages + sent, static_cast<unsigned>(queued_ - sent), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN (buffer full) or an error for the first message: drop it and
      // go on with the rest, as a single sendto would have.
      ++dropped_sends_;
      ++sent;
      continue;
    }
    sent += static_cast<size_t>(n);
  }
  queued_ = 0;
}

proto::SocketAddress UdpSocket::local_address() const {
  sockaddr_storage storage{};
  int length = sizeof storage;
  uv_udp_getsockname(handle_, reinterpret_cast<sockaddr*>(&storage), &length);
  return from_sockaddr(reinterpret_cast<sockaddr*>(&storage));
}

}  // namespace tsunagu::transport
