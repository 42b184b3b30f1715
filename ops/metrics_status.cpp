#include "ops/metrics_status.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <vector>

#include "base/bytes.hpp"
#include "security/tls_session.hpp"

namespace tsunagu::ops {
namespace {

constexpr size_t max_response = 4 << 20;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

bool send_all(int fd, const Bytes& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Expected<std::string, std::string> fetch_metrics(const std::string& host, uint16_t port, const std::string& ca_file,
                                                 const std::string& bearer_token, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr)
    return Unexpected("not an IP address: " + host);
  Socket sock(socket(found->ai_family, SOCK_STREAM, 0));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(sock.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(sock.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc = connect(sock.fd(), found->ai_addr, found->ai_addrlen);
  int error = errno;
  freeaddrinfo(found);
  std::string where = host + ":" + std::to_string(port);
  if (sock.fd() < 0 || rc != 0)
    return Unexpected("cannot connect to " + where + ": " + std::strerror(error) + " (is the daemon running with web.listen?)");
  security::TlsContext::ClientOptions options;
  options.ca_file = ca_file;
  auto context = security::TlsContext::client(options);
  if (!context) return Unexpected("TLS: " + context.error().detail);
  auto session = security::TlsSession::create(*context, security::TlsSession::Role::client);
  if (!session) return Unexpected("TLS: cannot create a session");
  if (auto started = session->start(); !started) return Unexpected("TLS: " + started.error().detail);
  std::string request = "GET /metrics HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n";
  if (!bearer_token.empty()) request += "Authorization: Bearer " + bearer_token + "\r\n";
  request += "\r\n";
  (void)session->send(ByteView(reinterpret_cast<const std::byte*>(request.data()), request.size()));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  Bytes plain;
  std::vector<std::byte> buffer(16384);
  while (true) {
    if (session->has_output() && !send_all(sock.fd(), session->take_output()))
      return Unexpected("the daemon closed the connection during TLS");
    if (session->peer_closed() || plain.size() > max_response) break;
    if (std::chrono::steady_clock::now() > deadline) return Unexpected("no answer from " + where + " in time");
    ssize_t n = recv(sock.fd(), buffer.data(), buffer.size(), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unexpected("no answer from " + where + ": " + std::strerror(errno));
    }
    auto received = session->receive(ByteView(buffer.data(), static_cast<size_t>(n)), plain);
    if (!received) return Unexpected("TLS with " + where + ": " + received.error().detail);
  }
  std::string response(reinterpret_cast<const char*>(plain.data()), plain.size());
  size_t end_of_head = response.find("\r\n\r\n");
  if (end_of_head == std::string::npos) return Unexpected("no HTTP answer from " + where);
  std::string status_line = response.substr(0, response.find("\r\n"));
  if (status_line.find(" 200 ") == std::string::npos)
    return Unexpected("the daemon answered " + status_line);
  if (response.substr(0, end_of_head).find("chunked") != std::string::npos)
    return Unexpected("a chunked answer, which status does not read");
  return response.substr(end_of_head + 4);
}

std::string summarise_metrics(std::string_view exposition) {
  std::map<std::string, std::string> families;
  std::vector<std::string> order;
  size_t at = 0;
  while (at < exposition.size()) {
    size_t end = exposition.find('\n', at);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line.front() == '#') continue;
    size_t brace = line.find('{');
    size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    std::string name(line.substr(0, std::min(brace, line.find(' '))));
    if (name.ends_with("_bucket")) continue;
    std::string labels;
    if (brace != std::string_view::npos) {
      size_t close = line.find('}', brace);
      if (close == std::string_view::npos) continue;
      for (char c : line.substr(brace + 1, close - brace - 1))
        if (c != '"') labels += c;
    }
    std::string value(line.substr(space + 1));
    auto [it, fresh] = families.try_emplace(name);
    if (fresh) order.push_back(name);
    if (!it->second.empty()) it->second += ", ";
    it->second += labels.empty() ? value : labels + " " + value;
  }
  std::string out;
  for (const auto& name : order) out += name + ": " + families[name] + "\n";
  return out;
}

}  // namespace tsunagu::ops
