#include "transport/tls_link.hpp"

#include "base/log_hold.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

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

// A link's batch is written once it would pass this, and the per-thread
// ciphertext buffer is given back when a write grew it past this.
constexpr size_t kKeptBatchBuffer = 64 * 1024;
// The batcher keeps one buffer per link written in a turn, for the next turns:
// only small ones, so a turn of large transfers to many links leaves no
// memory behind.
constexpr size_t kKeptEntryBuffer = 4096;

}  // namespace

// Gathers what the links of one loop send during a turn and hands each link its
// messages once, just before the loop next polls (a prepare handle): after the
// I/O callbacks and the check handles (the node answers from one) and any
// timers, with no extra loop turn or system call. The buffers belong to
// the batcher and are reused turn after turn: an idle link holds none, and a
// busy one allocates nothing per message. One batcher per loop, closed with the
// last link of that loop.
class OutputBatcher {
 public:
  static OutputBatcher* attach(uv_loop_t* loop) {
    for (auto* batcher : batchers())
      if (batcher->loop_ == loop) {
        ++batcher->links_;
        return batcher;
      }
    auto* batcher = new OutputBatcher(loop);
    batchers().push_back(batcher);
    return batcher;
  }

  void detach() {
    if (--links_ > 0) return;
    auto& all = batchers();
    all.erase(std::find(all.begin(), all.end(), this));
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), handle_closed);
  }

  // Appends to the link's batch. A batch that would pass kKeptBatchBuffer is
  // written first (a large transfer in one turn is not held back: the socket
  // takes what it can at once, as when every send wrote), which can close the
  // link.
  void queue(TlsLink& link, ByteView message) {
    if (link.batch_slot_ >= 0 &&
        entries_[static_cast<size_t>(link.batch_slot_)].plaintext.size() + message.size() > kKeptBatchBuffer) {
      write_entry(static_cast<size_t>(link.batch_slot_));
      if (link.closing_) return;
    }
    if (link.batch_slot_ < 0) {
      if (used_ == entries_.size()) entries_.emplace_back();
      entries_[used_].link = &link;
      link.batch_slot_ = static_cast<int32_t>(used_++);
      if (used_ == 1) uv_prepare_start(&prepare_, before_poll);
    }
    Bytes& batch = entries_[static_cast<size_t>(link.batch_slot_)].plaintext;
    batch.insert(batch.end(), message.begin(), message.end());
  }

  // Writes the link's batch now (before close_notify, say).
  void flush(TlsLink& link) {
    if (link.batch_slot_ >= 0) write_entry(static_cast<size_t>(link.batch_slot_));
  }

  // Drops the link's batch: it is closing.
  void forget(TlsLink& link) {
    if (link.batch_slot_ < 0) return;
    Entry& entry = entries_[static_cast<size_t>(link.batch_slot_)];
    entry.link = nullptr;
    entry.plaintext.clear();
    link.batch_slot_ = -1;
  }

 private:
  struct Entry {
    TlsLink* link = nullptr;
    Bytes plaintext;
  };

  explicit OutputBatcher(uv_loop_t* loop) : loop_(loop) {
    uv_prepare_init(loop, &prepare_);
    prepare_.data = this;
    // The links keep the loop alive, not their batcher.
    uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  }

  static std::vector<OutputBatcher*>& batchers() {
    thread_local std::vector<OutputBatcher*> all;
    return all;
  }

  static void handle_closed(uv_handle_t* handle) {
    delete static_cast<OutputBatcher*>(handle->data);
  }

  static void before_poll(uv_prepare_t* prepare) { static_cast<OutputBatcher*>(prepare->data)->write_all(); }

  void write_entry(size_t index) {
    TlsLink* link = entries_[index].link;
    if (link == nullptr) return;
    entries_[index].link = nullptr;
    link->batch_slot_ = -1;
    // Writing can close links, whose callbacks may send and grow entries_:
    // the batch is moved out while the link encrypts it, then given back
    // (emptied) so its capacity is reused.
    Bytes batch = std::move(entries_[index].plaintext);
    link->write_batch(batch);
    batch.clear();
    if (batch.capacity() <= kKeptEntryBuffer) entries_[index].plaintext = std::move(batch);
  }

  void write_all() {
    log::write_held();  // a turn's log lines go before its answers
    for (size_t i = 0; i < used_; ++i) write_entry(i);
    used_ = 0;
    uv_prepare_stop(&prepare_);
  }

  uv_loop_t* loop_;
  uv_prepare_t prepare_{};
  std::vector<Entry> entries_;
  size_t used_ = 0;
  size_t links_ = 1;
};

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
                 std::string_view verify_name, std::shared_ptr<const LinkCallbacks> callbacks, LinkLimits limits)
    : id_(next_link_id++),
      tls_(security::TlsSession::create(std::move(context), role, verify_name)),
      frames_(limits.max_message_size),
      callbacks_(std::move(callbacks)),
      limits_(limits) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  batcher_ = OutputBatcher::attach(loop);
}

TlsLink* TlsLink::accept(uv_stream_t* server, std::shared_ptr<security::TlsContext> context, LinkCallbacks callbacks,
                         LinkLimits limits) {
  return accept(server, std::move(context), std::make_shared<const LinkCallbacks>(std::move(callbacks)), limits);
}

TlsLink* TlsLink::accept(uv_stream_t* server, std::shared_ptr<security::TlsContext> context,
                         std::shared_ptr<const LinkCallbacks> callbacks, LinkLimits limits) {
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
                           std::make_shared<const LinkCallbacks>(std::move(callbacks)), limits);
  link->peer_ = address;
  // Freed by connect_cb, which libuv always calls once the connect started
  // (with UV_ECANCELED when the link closes first).
  auto* request = new uv_connect_t{};
  request->data = link;
  sockaddr_storage target{};
  to_sockaddr(address, &target);
  int rc = uv_tcp_connect(request, &link->tcp_, reinterpret_cast<const sockaddr*>(&target), connect_cb);
  if (rc != 0) {
    // Returned, not called back: the caller has no link to forget.
    delete request;
    link->discard();
    return Unexpected(ConnectFailure{rc, std::string("connect: ") + uv_strerror(rc)});
  }
  return link;
}

void TlsLink::discard() {
  // No callback runs; the handle still has to close, and close_cb deletes the
  // link a loop turn later.
  callbacks_.reset();
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
  delete request;
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
    if (callbacks_ && callbacks_->on_ready) callbacks_->on_ready(*this);
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
      if (callbacks_ && callbacks_->on_message) callbacks_->on_message(*this, **next);
    }
  }
  if (!closing_ && tls_->peer_closed()) finish(CloseCause::peer_closed, "peer sent close_notify");
}

void TlsLink::send(ByteView message) {
  if (closing_ || close_after_flush_) return;
  batcher_->queue(*this, message);  // the output limit applies when the batch is written
}

void TlsLink::write_batch(ByteView plaintext) {
  if (closing_ || plaintext.empty()) return;
  if (auto sent = tls_->send(plaintext); !sent) {
    finish(CloseCause::tls, "TLS: " + sent.error().detail);
    return;
  }
  flush_output();
}

void TlsLink::flush_output() {
  if (!tls_->has_output()) return;
  // One ciphertext buffer per thread, reused: most writes complete at once and
  // never need a copy of their own. A write nested inside another's callbacks
  // (a link closing as another writes) takes a buffer of its own.
  thread_local Bytes ciphertext;
  thread_local bool in_use = false;
  if (in_use) {
    Bytes own;
    tls_->take_output(own);
    write_raw(own);
    return;
  }
  in_use = true;
  ciphertext.clear();
  tls_->take_output(ciphertext);
  write_raw(ciphertext);
  in_use = false;
  if (ciphertext.capacity() > kKeptBatchBuffer) Bytes().swap(ciphertext);
}

void TlsLink::write_raw(ByteView bytes) {
  if (closing_) return;
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())),
                             static_cast<unsigned>(bytes.size()));
  // Most writes fit the socket buffer: try without allocating a request.
  if (queued_output_ == 0) {
    int written = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
    if (written == static_cast<int>(bytes.size())) return;
    if (written > 0) bytes = bytes.subspan(static_cast<size_t>(written));
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
  request->bytes.assign(bytes.begin(), bytes.end());
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
  if (link->close_after_flush_ && link->queued_output_ == 0) link->finish(CloseCause::local, *link->close_reason_);
}

void TlsLink::close(std::string_view reason) {
  if (closing_ || close_after_flush_) return;
  batcher_->flush(*this);  // what was sent this turn goes before close_notify
  if (closing_) return;
  tls_->close();
  flush_output();
  if (closing_) return;
  if (queued_output_ == 0) {
    finish(CloseCause::local, std::string(reason));
  } else {
    close_after_flush_ = true;
    close_reason_ = std::make_unique<std::string>(reason);
  }
}

void TlsLink::abort(std::string_view reason) {
  // What was sent this turn is still offered to the socket, as when every
  // send wrote at once; then the link closes without close_notify.
  if (!closing_) batcher_->flush(*this);
  finish(CloseCause::local, std::string(reason));
}

void TlsLink::finish(CloseCause cause, std::string reason) {
  if (closing_) return;
  closing_ = true;
  close_cause_ = cause;
  batcher_->forget(*this);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  // closing_ stops every other callback; the callbacks themselves stay until
  // the link is deleted, as this can run inside one of them.
  if (callbacks_ && callbacks_->on_closed) callbacks_->on_closed(*this, reason);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
}

void TlsLink::close_cb(uv_handle_t* handle) {
  // Pending writes have completed (cancelled) before the close callback runs.
  auto* link = static_cast<TlsLink*>(handle->data);
  link->batcher_->detach();
  delete link;
}

}  // namespace tsunagu::transport
