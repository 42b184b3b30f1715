#include "rendezvous/browser_signalling.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "proto/signalling.hpp"
#include "webrtc/session_description.hpp"

namespace tsunagu::rendezvous {
namespace {

using json = nlohmann::json;

Unexpected<BrowserMessageError> refuse(std::string reason) { return Unexpected(BrowserMessageError{std::move(reason)}); }

bool is_call_id(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<BrowserMessage::Kind> kind_of(std::string_view type) {
  using Kind = BrowserMessage::Kind;
  if (type == "available") return Kind::available;
  if (type == "unavailable") return Kind::unavailable;
  if (type == "call") return Kind::call;
  if (type == "offer") return Kind::offer;
  if (type == "ice_servers") return Kind::ice_servers;
  if (type == "answer") return Kind::answer;
  if (type == "decline") return Kind::decline;
  if (type == "hangup") return Kind::hangup;
  if (type == "candidate") return Kind::candidate;
  if (type == "call_path") return Kind::call_path;
  return std::nullopt;
}

// The candidate types getStats() names (RTCIceCandidateType), the words of ICE-PATH.
bool is_candidate_type(std::string_view word) {
  return word == "host" || word == "srflx" || word == "prflx" || word == "relay";
}

// A string field that must be there; its size bounded.
Expected<std::string, BrowserMessageError> text_field(const json& body, const char* name, size_t max_size) {
  auto it = body.find(name);
  if (it == body.end() || !it->is_string()) return refuse(std::string("\"") + name + "\" must be a string");
  std::string value = it->get<std::string>();
  if (value.size() > max_size)
    return refuse(std::string("\"") + name + "\" is longer than " + std::to_string(max_size) + " bytes");
  return value;
}

}  // namespace

std::optional<std::string> sdp_refusal(std::string_view sdp) {
  if (sdp.size() > max_browser_sdp) return "the description is larger than " + std::to_string(max_browser_sdp) + " bytes";
  auto parsed = webrtc::parse_session_description(sdp);
  if (!parsed) return std::string(webrtc::to_string(parsed.error().code)) + ": " + parsed.error().detail;
  return std::nullopt;
}

Expected<BrowserMessage, BrowserMessageError> parse_browser_message(std::string_view text) {
  if (text.size() > max_browser_message)
    return refuse("a message larger than " + std::to_string(max_browser_message) + " bytes");
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return refuse("a message must be a JSON object");
  auto type = text_field(body, "type", 32);
  if (!type) return Unexpected(type.error());
  auto kind = kind_of(*type);
  if (!kind) return refuse("unknown message type \"" + *type + "\"");
  BrowserMessage message;
  message.kind = *kind;
  using Kind = BrowserMessage::Kind;
  if (*kind == Kind::available || *kind == Kind::unavailable) return message;
  if (*kind == Kind::call) {
    auto to = text_field(body, "to", proto::max_user_id_size);
    if (!to) return Unexpected(to.error());
    if (!proto::valid_user_id(*to)) return refuse("\"to\" is not a user ID, EXT@DOMAIN or +NUMBER");
    message.to = std::move(*to);
    return message;
  }
  auto call_id = text_field(body, "call_id", 32);
  if (!call_id) return Unexpected(call_id.error());
  if (!is_call_id(*call_id)) return refuse("\"call_id\" must be the 32 hex digits the node gave");
  message.call_id = std::move(*call_id);
  if (*kind == Kind::offer || *kind == Kind::answer) {
    auto sdp = text_field(body, "sdp", max_browser_sdp);
    if (!sdp) return Unexpected(sdp.error());
    if (auto refusal = sdp_refusal(*sdp)) return refuse("\"sdp\": " + *refusal);
    message.sdp = std::move(*sdp);
  } else if (*kind == Kind::candidate) {
    auto candidate = text_field(body, "candidate", max_browser_candidate);
    if (!candidate) return Unexpected(candidate.error());
    auto parsed = webrtc::parse_candidate(*candidate);
    if (!parsed) return refuse("\"candidate\": " + parsed.error().detail);
    message.candidate = std::move(*candidate);
  } else if (*kind == Kind::call_path) {
    auto local = text_field(body, "local", 8);
    if (!local) return Unexpected(local.error());
    auto remote = text_field(body, "remote", 8);
    if (!remote) return Unexpected(remote.error());
    if (!is_candidate_type(*local) || !is_candidate_type(*remote))
      return refuse("\"local\" and \"remote\" must each be host, srflx, prflx or relay");
    message.path = *local + "/" + *remote;
  } else if (*kind == Kind::decline) {
    if (auto busy = body.find("busy"); busy != body.end()) {
      if (!busy->is_boolean()) return refuse("\"busy\" must be true or false");
      message.busy = busy->get<bool>();
    }
  }
  return message;
}

}  // namespace tsunagu::rendezvous
