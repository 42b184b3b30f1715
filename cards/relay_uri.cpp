#include "cards/relay_uri.hpp"

#include <charconv>

namespace tsunagu::cards {

std::string RelayUri::host_port() const {
  std::string text = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return text + ":" + std::to_string(port);
}

std::optional<RelayUri> parse_relay_uri(std::string_view uri) {
  if (uri.empty() || uri.size() > 255) return std::nullopt;
  RelayUri relay;
  uint16_t default_port = 3478;
  if (uri.starts_with("stun:")) {
    relay.scheme = RelayScheme::stun;
    uri.remove_prefix(5);
  } else if (uri.starts_with("turns:")) {
    relay.scheme = RelayScheme::turns;
    relay.tcp = true;
    default_port = 5349;
    uri.remove_prefix(6);
  } else if (uri.starts_with("turn:")) {
    relay.scheme = RelayScheme::turn;
    uri.remove_prefix(5);
  } else {
    return std::nullopt;
  }
  if (auto query = uri.find('?'); query != std::string_view::npos) {
    std::string_view transport = uri.substr(query + 1);
    uri = uri.substr(0, query);
    if (relay.scheme == RelayScheme::stun) return std::nullopt;
    if (transport == "transport=tcp") relay.tcp = true;
    else if (transport == "transport=udp" && relay.scheme == RelayScheme::turn) relay.tcp = false;
    else return std::nullopt;
  }
  std::string_view port_text;
  if (uri.starts_with('[')) {
    auto close = uri.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    relay.host = std::string(uri.substr(1, close - 1));
    std::string_view rest = uri.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
      if (port_text.empty()) return std::nullopt;
    }
  } else {
    auto colon = uri.find(':');
    relay.host = std::string(uri.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = uri.substr(colon + 1);
      if (port_text.empty()) return std::nullopt;
    }
  }
  if (relay.host.empty()) return std::nullopt;
  for (char c : relay.host)
    if (c <= ' ' || c > '~' || c == '/' || c == '@' || c == '[' || c == ']') return std::nullopt;
  relay.port = default_port;
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, errc] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (errc != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
      return std::nullopt;
    relay.port = static_cast<uint16_t>(value);
  }
  return relay;
}

}  // namespace tsunagu::cards
