// bare_tls_server: the reference for benchmark 4. Accepts TLS on a loopback
// port with the node's TlsContext settings (security::TlsContext::server with
// the node's certificate and key, TLS 1.3), completes the handshake, then only
// holds the link: whatever the client sends is decrypted and dropped (with
// --echo, sent back: the floor of a server that answers each keepalive). One
// thread, epoll, one TlsSession (memory BIOs) per link, as the node has. What
// it costs per link is the floor of any server built on our TLS adapter.
//
//   bare_tls_server --listen 127.0.0.1:PORT --cert node.crt --key node.key [--echo] [--ready-file F]
//
// The ready file gets {"port": P, "pid": PID}. SIGTERM or SIGINT stops it.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bench/load_link.hpp"

namespace {

using namespace tsunagu;

volatile std::sig_atomic_t stop_requested = 0;

struct Held {
  int fd = -1;
  std::unique_ptr<security::TlsSession> tls;
  Bytes out;
  size_t offset = 0;
};

bool flush(Held& h) {
  if (h.tls->has_output()) {
    Bytes more = h.tls->take_output();
    h.out.insert(h.out.end(), more.begin(), more.end());
  }
  while (h.offset < h.out.size()) {
    ssize_t n = ::write(h.fd, h.out.data() + h.offset, h.out.size() - h.offset);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    h.offset += static_cast<size_t>(n);
  }
  h.out.clear();
  h.out.shrink_to_fit();
  h.offset = 0;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_text, cert, key, ready_file;
  bool echo = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--echo") {
      echo = true;
      continue;
    }
    if (i + 1 >= argc) return std::fprintf(stderr, "bare_tls_server: %s needs a value\n", argv[i]), 2;
    if (arg == "--listen") listen_text = argv[++i];
    else if (arg == "--cert") cert = argv[++i];
    else if (arg == "--key") key = argv[++i];
    else if (arg == "--ready-file") ready_file = argv[++i];
    else return std::fprintf(stderr, "bare_tls_server: unknown argument %s\n", argv[i]), 2;
  }
  auto listen = proto::SocketAddress::parse(listen_text);
  if (!listen || cert.empty() || key.empty() || !bench::is_loopback(*listen)) {
    std::fprintf(stderr, "usage: bare_tls_server --listen 127.0.0.1:PORT --cert FILE --key FILE [--echo] [--ready-file F]\n");
    return 2;
  }
  security::TlsContext::ServerOptions server;
  server.certificate_chain_file = cert;
  server.private_key_file = key;
  auto context = security::TlsContext::server(server);
  if (!context) return std::fprintf(stderr, "bare_tls_server: %s\n", context.error().detail.c_str()), 1;

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = [](int) { stop_requested = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  sockaddr_storage address{};
  socklen_t length = bench::to_sockaddr(*listen, &address);
  int listener = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(listener, 4096) != 0) {
    std::perror("bare_tls_server: bind/listen");
    return 1;
  }
  socklen_t bound_length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &bound_length);
  int port = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << "{\"port\": " << port << ", \"pid\": " << getpid() << "}\n";
    }
    std::rename(tmp.c_str(), ready_file.c_str());
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::unordered_map<int, Held> held;
  Bytes plaintext;
  std::byte buffer[16384];
  auto drop = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    held.erase(fd);
  };
  while (!stop_requested) {
    epoll_event events[256];
    int n = epoll_wait(ep, events, 256, 200);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        for (int k = 0; k < 256; ++k) {
          int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          Held h;
          h.fd = client;
          h.tls = security::TlsSession::create(*context, security::TlsSession::Role::server);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = client;
          epoll_ctl(ep, EPOLL_CTL_ADD, client, &cev);
          held.emplace(client, std::move(h));
        }
        continue;
      }
      auto it = held.find(fd);
      if (it == held.end()) continue;
      Held& h = it->second;
      bool ok = true;
      for (int rounds = 0; rounds < 16 && ok; ++rounds) {
        ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got <= 0) {
          ok = false;
          break;
        }
        plaintext.clear();
        if (!h.tls->receive(ByteView(buffer, static_cast<size_t>(got)), plaintext)) ok = false;
        if (ok && echo && !plaintext.empty() && !h.tls->send(plaintext)) ok = false;
        if (h.tls->peer_closed()) ok = false;
        if (static_cast<size_t>(got) < sizeof buffer) break;
      }
      if (ok) ok = flush(h);
      if (!ok) drop(fd);
    }
  }
  for (auto& [fd, h] : held) ::close(fd);
  ::close(listener);
  ::close(ep);
  return 0;
}
