#include "rendezvous/web_api.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <charconv>
#include <nlohmann/json.hpp>

#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/account_admin.hpp"
#include "security/digest.hpp"
#include "security/encoding.hpp"

namespace tsunagu::rendezvous {
namespace {

namespace sig = tsunagu::proto;
using json = nlohmann::json;
using web::HttpRequest;
using web::HttpResponse;

constexpr size_t max_fetch_bytes = size_t{16} << 20;  // a stored message is far smaller; a bound all the same
constexpr size_t admin_page = 100;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_response(int status, const json& body) {
  HttpResponse response;
  response.status = status;
  response.headers.add("content-type", "application/json");
  response.headers.add("cache-control", "no-store");
  response.body = dump(body);
  return response;
}

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  return json_response(status, json{{"error", code}, {"message", message}});
}

HttpResponse no_content() {
  HttpResponse response;
  response.status = 204;
  response.headers.add("cache-control", "no-store");
  return response;
}

std::string key_of(const proto::TransactionId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

std::string base64url(ByteView bytes) {
  std::string text = security::base64_encode(bytes);
  for (char& c : text) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!text.empty() && text.back() == '=') text.pop_back();
  return text;
}

std::string token_hash(std::string_view token) {
  Bytes digest = security::sha256(as_bytes(token));
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

// The CSRF token's check: no early exit, so timing does not tell how much matched.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

std::optional<std::string> cookie_value(const HttpRequest& request, std::string_view name) {
  for (const auto& [header, value] : request.headers.entries) {
    if (header != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t end = rest.find(';');
      std::string_view pair = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

// The media type without parameters, lower case.
std::string media_type(const HttpRequest& request) {
  const std::string* type = request.headers.find("content-type");
  if (type == nullptr) return {};
  std::string out = type->substr(0, type->find(';'));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool state_changing(const HttpRequest& request) {
  return request.method == "POST" || request.method == "PUT" || request.method == "DELETE";
}

// A JSON object body, or the error to answer.
Expected<json, HttpResponse> read_json(const HttpRequest& request, size_t limit) {
  if (media_type(request) != "application/json")
    return Unexpected(error_response(415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)"));
  if (request.body.size() > limit)
    return Unexpected(error_response(413, "payload_too_large",
                                     "the body is larger than " + std::to_string(limit) + " bytes"));
  // An object naming a key twice is refused: parsers differ on which one
  // counts (nlohmann takes the last), so a proxy or log that read the first
  // would see another request than the node acts on.
  std::vector<std::set<std::string>> open_objects;
  bool repeated_key = false;
  json::parser_callback_t note_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second)
      repeated_key = true;
    return true;
  };
  json body = json::parse(request.body, note_keys, false);
  if (body.is_discarded()) return Unexpected(error_response(400, "bad_request", "the body is not valid JSON"));
  if (repeated_key) return Unexpected(error_response(400, "bad_request", "the body names a key twice"));
  if (!body.is_object()) return Unexpected(error_response(400, "bad_request", "the body must be a JSON object"));
  return body;
}

// Field readers: nullopt when absent; an error message when of the wrong type.
struct FieldError {
  std::string message;
};
Expected<std::optional<std::string>, FieldError> string_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return std::optional<std::string>();
  if (!it->is_string()) return Unexpected(FieldError{std::string("\"") + name + "\" must be a string"});
  return std::optional<std::string>(it->get<std::string>());
}
// Several string fields at once; the first of the wrong type is the error.
template <size_t N>
Expected<std::array<std::optional<std::string>, N>, FieldError> string_fields(const json& body,
                                                                              const char* const (&names)[N]) {
  std::array<std::optional<std::string>, N> values;
  for (size_t i = 0; i < N; ++i) {
    auto value = string_field(body, names[i]);
    if (!value) return Unexpected(std::move(value.error()));
    values[i] = std::move(*value);
  }
  return values;
}
Expected<std::optional<bool>, FieldError> bool_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return std::optional<bool>();
  if (!it->is_boolean()) return Unexpected(FieldError{std::string("\"") + name + "\" must be true or false"});
  return std::optional<bool>(it->get<bool>());
}

std::optional<uint64_t> parse_number(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<proto::ErrorCode> error_of(const proto::Message& reply) {
  if (reply.message_class != proto::MessageClass::error) return std::nullopt;
  const auto* a = reply.find(proto::attr::error_code);
  auto code = a ? proto::read_error_code(*a) : std::nullopt;
  return code ? code : proto::ErrorCode{sig::error::server_error, "Server Error: an answer without ERROR-CODE"};
}

std::string text_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}
std::optional<uint64_t> u64_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? proto::read_u64(*a) : std::nullopt;
}
std::optional<uint32_t> u32_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? proto::read_u32(*a) : std::nullopt;
}

// The core's error answer as HTTP (docs/web.md, "Errors").
HttpResponse from_core_error(const proto::Message& reply) {
  proto::ErrorCode error = *error_of(reply);
  std::string message(error.reason);
  switch (error.code) {
    case sig::error::bad_request: return error_response(400, "bad_request", message);
    case sig::error::unauthenticated: return error_response(401, "unauthenticated", message);
    case sig::error::forbidden: return error_response(403, "forbidden", message);
    case sig::error::unknown_user: return error_response(404, "not_found", message);
    case sig::error::user_exists: return error_response(409, "conflict", message);
    case sig::error::too_large: return error_response(413, "payload_too_large", message);
    case sig::error::invalid_user_id: return error_response(422, "invalid_user_id", message);
    case sig::error::too_many_attempts: {
      HttpResponse response = error_response(429, "too_many_requests", message);
      response.headers.add("retry-after", std::to_string(std::max<uint32_t>(1, u32_of(reply, sig::attr::retry_after).value_or(1))));
      return response;
    }
    case sig::error::no_live_lease: return error_response(404, "not_found", message);
    case sig::error::not_implemented: return error_response(501, "not_implemented", message);
    case sig::error::over_quota: return error_response(507, "insufficient_storage", message);
    case sig::error::unavailable:
    case sig::error::agent_offline:
    case sig::error::agent_timeout: return error_response(503, "unavailable", message);
    default: return error_response(500, "server_error", message);
  }
}

std::string_view visibility_name(uint32_t value) {
  switch (value) {
    case sig::presence_visibility::anyone: return "anyone";
    case sig::presence_visibility::contacts: return "contacts";
    default: return "nobody";
  }
}

json profile_json(const proto::Message& reply) {
  uint32_t services = u32_of(reply, sig::attr::services).value_or(0);
  json contacts = json::array();
  for (const auto& id : proto::split_contacts(text_of(reply, sig::attr::contacts))) contacts.push_back(id);
  return json{{"id", text_of(reply, sig::attr::user_id)},
              {"display_name", text_of(reply, sig::attr::display_name)},
              {"phone", text_of(reply, sig::attr::phone)},
              {"category", text_of(reply, sig::attr::category)},
              {"publish", u32_of(reply, sig::attr::publish).value_or(0) != 0},
              {"voicemail", (services & sig::service_flag::voicemail) != 0},
              {"presence_visibility", visibility_name(u32_of(reply, sig::attr::presence_visibility).value_or(0))},
              {"addresses_shown", u32_of(reply, sig::attr::addresses_shown).value_or(0) != 0},
              {"contacts", contacts}};
}

// PUT /api/profile's body as a profile change; the core checks the values.
Expected<proto::ProfileChange, std::string> profile_change_of(const json& body) {
  proto::ProfileChange change;
  for (const auto& item : body.items()) {
    // Named references, not a structured binding: clang 14 cannot capture those in the lambdas below.
    const std::string& key = item.key();
    const json& value = item.value();
    auto text = [&](std::optional<std::string>& out) -> bool {
      if (!value.is_string()) return false;
      out = value.get<std::string>();
      return true;
    };
    auto flag = [&](std::optional<bool>& out) -> bool {
      if (!value.is_boolean()) return false;
      out = value.get<bool>();
      return true;
    };
    bool ok = true;
    if (key == "display_name") ok = text(change.display_name);
    else if (key == "phone") ok = text(change.phone);
    else if (key == "category") ok = text(change.category);
    else if (key == "publish") ok = flag(change.publish);
    else if (key == "voicemail") ok = flag(change.voicemail);
    else if (key == "addresses_shown") ok = flag(change.addresses_shown);
    else if (key == "presence_visibility") {
      std::string name = value.is_string() ? value.get<std::string>() : std::string();
      if (name == "anyone") change.presence_visibility = sig::presence_visibility::anyone;
      else if (name == "contacts") change.presence_visibility = sig::presence_visibility::contacts;
      else if (name == "nobody") change.presence_visibility = sig::presence_visibility::nobody;
      else return Unexpected(std::string("\"presence_visibility\" must be \"anyone\", \"contacts\" or \"nobody\""));
    } else if (key == "contacts") {
      if (!value.is_array() || value.size() > sig::max_contacts)
        return Unexpected("\"contacts\" must be an array of at most " + std::to_string(sig::max_contacts) + " user IDs");
      std::vector<std::string> ids;
      for (const auto& id : value) {
        if (!id.is_string()) return Unexpected(std::string("\"contacts\" must hold strings"));
        ids.push_back(id.get<std::string>());
      }
      change.contacts = std::move(ids);
    } else if (key == "id") {
      continue;  // the whole profile sent back: the ID is not a field to change
    } else {
      return Unexpected("unknown field \"" + key + "\"");
    }
    if (!ok) return Unexpected("\"" + key + "\" has the wrong type");
  }
  return change;
}

HttpResponse method_not_allowed(std::string_view allow) {
  HttpResponse response = error_response(405, "method_not_allowed", "method not allowed here");
  response.headers.add("allow", std::string(allow));
  return response;
}

// What cluster mode does not share yet (docs/cluster.md, "Not in cluster mode yet").
HttpResponse not_in_cluster_mode(std::string_view feature) {
  return error_response(501, "not_implemented",
                        std::string(feature) +
                            " not yet in cluster mode (this node keeps its accounts in PostgreSQL; docs/cluster.md)");
}

std::string_view audio_type(std::string_view bytes) {
  if (bytes.starts_with("OggS")) return "audio/ogg";
  if (bytes.starts_with("\x1a\x45\xdf\xa3")) return "audio/webm";
  return "application/octet-stream";
}

}  // namespace

struct WebApi::Session {
  uint64_t id = 0;
  LinkId link = 0;
  std::string user;
  std::string token_hash;
  std::string csrf;
  uint64_t created_ms = 0;
  uint64_t last_request_ms = 0;
  uint64_t last_core_ms = 0;  // the link's last message to the core
  std::function<void(std::string)> subscriber;
  uint64_t newest_voicemail = 0;  // the highest message ID listed so far (IDs only grow)
  // The account's contacts whose presence events can follow (plain user
  // IDs: extensions and numbers have no presence on this node), and the
  // state last sent for each.
  std::vector<std::string> contacts;
  std::unordered_map<std::string, std::string> shown_presence;
};

namespace {
// A lookup's answer as the pages show it: "online", "busy", "offline", or
// nullopt for an answer that says nothing (an error other than offline).
std::optional<std::string> presence_state(const proto::Message& reply) {
  auto error = error_of(reply);
  if (error && error->code != sig::error::offline) return std::nullopt;
  uint32_t presence = error ? 0 : u32_of(reply, sig::attr::presence).value_or(0);
  if (presence & sig::presence_flag::in_call) return "busy";
  if (presence & (sig::presence_flag::online | sig::presence_flag::static_address)) return "online";
  return "offline";
}

bool has_presence(std::string_view id) { return !id.empty() && id.front() != '+' && id.find('@') == std::string_view::npos; }

uint64_t newest_listed(const proto::Message& list) {
  uint64_t newest = 0;
  for (const auto* a : list.find_all(sig::attr::voicemail_entry))
    if (auto e = proto::decode_voicemail_entry(a->value)) newest = std::max(newest, e->id);
  return newest;
}
}  // namespace

WebApi::WebApi(NodeCore& core, AccountStore& store, WebApiSettings settings,
               std::function<void(std::span<std::byte>)> random)
    : core_(core), store_(store), settings_(std::move(settings)), random_(std::move(random)) {
  // The core opened both already; a failure here leaves the admin reads
  // that need them answering 503.
  if (auto registry = AgentRegistry::open(store_.environment())) registry_.emplace(std::move(*registry));
  if (auto voicemail = VoicemailStore::open(store_.environment())) voicemail_.emplace(std::move(*voicemail));
  if (auto ledger = CardLedger::open(store_.environment())) card_ledger_.emplace(std::move(*ledger));
  // The name is card_ledger.hpp's: "card_accounts", be64 serial -> account record.
  if (auto accounts = store_.environment().open_database("card_accounts")) card_accounts_ = *accounts;
  core_.watch_changes(true);  // the daemon hands them to presence_changed() and mailbox_changed() every drain round
}

WebApi::~WebApi() { core_.watch_changes(false); }

AdminResult<Account> WebApi::read_session_account(const std::string& user) {
  return shared_accounts_ ? shared_accounts_->read(user) : read_account(store_, user);
}

proto::TransactionId WebApi::fresh_transaction() {
  proto::TransactionId id;
  random_(id.bytes);
  return id;
}

proto::MessageBuilder WebApi::core_message(proto::MessageClass message_class, uint16_t method,
                                           const proto::TransactionId& id) {
  proto::MessageBuilder builder(message_class, method, id);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  return builder;
}

std::string WebApi::random_token() {
  Bytes bytes(32);
  random_(bytes);
  return base64url(bytes);
}

LinkId WebApi::open_link(const HttpRequest& request, Now now) {
  LinkId link = link_range_bit | next_link_++;
  auto observed = proto::SocketAddress::parse(request.client_address);
  core_.link_opened(link, observed.value_or(proto::SocketAddress::v4({0, 0, 0, 0}, 0)), now);
  return link;
}

void WebApi::send(LinkId link, proto::MessageBuilder builder, const proto::TransactionId& id, OnReply on_reply,
                  std::function<void()> on_lost, Now now) {
  Bytes message = builder.finish();
  if (message.size() > proto::default_max_message_size) {
    // The core would count it malformed (and close the link after a few):
    // answered here as the core answers a request too large to decode.
    proto::MessageBuilder refusal(proto::MessageClass::error, proto::Message{}.method, id);
    auto decoded_request = proto::decode(message, message.size());
    if (decoded_request) refusal = proto::MessageBuilder::response_to(decoded_request->message, proto::MessageClass::error);
    refusal.add_error(sig::error::too_large, "Too Large: the request does not fit in one protocol message");
    Bytes refused = refusal.finish();
    auto decoded = proto::decode(refused);
    if (on_reply && decoded) on_reply(decoded->message, now);
    return;
  }
  pending_[key_of(id)] = Pending{link, std::move(on_reply), std::move(on_lost)};
  if (auto it = session_by_link_.find(link); it != session_by_link_.end())
    if (auto s = sessions_.find(it->second); s != sessions_.end()) s->second->last_core_ms = now.mono_ms;
  core_.message(link, message, now);
}

void WebApi::drop_link(LinkId link, Now now) {
  core_.link_closed(link, now);
  std::vector<std::function<void()>> lost;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.link == link) {
      if (it->second.on_lost) lost.push_back(std::move(it->second.on_lost));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& tell : lost) tell();
}

void WebApi::emit(Session& session, std::string event) {
  if (session.subscriber) session.subscriber(std::move(event));
}

void WebApi::end_session(uint64_t id, Now now, bool tell_core) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  std::unique_ptr<Session> session = std::move(it->second);
  sessions_.erase(it);
  session_by_token_hash_.erase(session->token_hash);
  session_by_link_.erase(session->link);
  pages_.erase(id);
  emit(*session, dump(json{{"type", "session_ended"}}));
  if (tell_core) drop_link(session->link, now);
}

WebApi::Session* WebApi::find_session(const HttpRequest& request, Now now) {
  auto token = cookie_value(request, cookie_name);
  if (!token || token->empty() || token->size() > 128) return nullptr;
  auto it = session_by_token_hash_.find(token_hash(*token));
  if (it == session_by_token_hash_.end()) return nullptr;
  Session& session = *sessions_.at(it->second);
  if (now.mono_ms >= session.last_request_ms + uint64_t{settings_.session_idle_s} * 1000 ||
      now.mono_ms >= session.created_ms + uint64_t{settings_.session_max_s} * 1000) {
    end_session(session.id, now, true);
    return nullptr;
  }
  return &session;
}

std::optional<uint64_t> WebApi::session_of(const HttpRequest& request, Now now) {
  Session* session = find_session(request, now);
  if (session == nullptr) return std::nullopt;
  return session->id;
}

void WebApi::subscribe(uint64_t session, std::function<void(std::string)> send, Now now) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  it->second->subscriber = std::move(send);
  // A new socket is a page that knows nothing yet: every contact's state is news.
  it->second->contacts.clear();
  it->second->shown_presence.clear();
  refresh_contacts(session, now);
}

void WebApi::unsubscribe(uint64_t session) {
  if (auto it = sessions_.find(session); it != sessions_.end()) it->second->subscriber = nullptr;
}

void WebApi::refresh_contacts(uint64_t session, Now now) {
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::profile_get, txn);
  send(sessions_.at(session)->link, std::move(b), txn, [this, session](const proto::Message& reply, Now at) {
    auto it = sessions_.find(session);
    if (it != sessions_.end() && !error_of(reply)) take_contacts(*it->second, reply, at);
  }, nullptr, now);
}

void WebApi::take_contacts(Session& session, const proto::Message& profile_row, Now now) {
  if (!session.subscriber) return;
  std::vector<std::string> contacts;
  for (auto& id : proto::split_contacts(text_of(profile_row, sig::attr::contacts)))
    if (has_presence(id)) contacts.push_back(std::move(id));
  std::erase_if(session.shown_presence, [&](const auto& shown) {
    return std::find(contacts.begin(), contacts.end(), shown.first) == contacts.end();
  });
  std::vector<std::string> added;
  for (const auto& id : contacts)
    if (std::find(session.contacts.begin(), session.contacts.end(), id) == session.contacts.end()) added.push_back(id);
  session.contacts = std::move(contacts);
  for (const auto& id : added) look_up_contact(session, id, now);
}

void WebApi::look_up_contact(Session& session, const std::string& contact, Now now) {
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::lookup, txn);
  b.add_string(sig::attr::user_id, contact);
  send(session.link, std::move(b), txn, [this, id = session.id, contact](const proto::Message& reply, Now) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = *it->second;
    if (std::find(s.contacts.begin(), s.contacts.end(), contact) == s.contacts.end()) return;
    // Not found is what a contact hiding their presence looks like too.
    auto error = error_of(reply);
    std::string state = error && error->code == sig::error::unknown_user ? "unknown" : presence_state(reply).value_or("");
    if (state.empty()) return;
    auto [shown, fresh] = s.shown_presence.try_emplace(contact, state);
    if (!fresh && shown->second == state) return;
    shown->second = state;
    emit(s, dump(json{{"type", "presence"}, {"id", contact}, {"state", state}}));
  }, nullptr, now);
}

void WebApi::presence_changed(const std::vector<std::string>& users, Now now) {
  // A node with no browser subscribed (most turns of a busy registrar) copies
  // and sorts nothing.
  auto subscribed = [](const auto& entry) { return entry.second->subscriber; };
  if (users.empty() || std::none_of(sessions_.begin(), sessions_.end(), subscribed)) return;
  std::vector<std::string> changed(users);
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  std::vector<std::pair<uint64_t, std::string>> lookups;
  for (const auto& [id, session] : sessions_) {
    if (!session->subscriber) continue;
    for (const auto& contact : session->contacts)
      if (std::binary_search(changed.begin(), changed.end(), contact)) lookups.emplace_back(id, contact);
  }
  for (const auto& [id, contact] : lookups) look_up_contact(*sessions_.at(id), contact, now);
}

void WebApi::handle(const HttpRequest& request, std::function<void(HttpResponse)> respond, Now now) {
  // Exactly once: later answers (a second path through a bug) are dropped.
  auto once = std::make_shared<Respond>([respond = std::move(respond), done = false](HttpResponse response) mutable {
    if (done) return;
    done = true;
    respond(std::move(response));
  });
  route(request, once, now);
}

void WebApi::route(const HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now) {
  const std::string& path = request.path;
  const std::string& method = request.method;
  Session* session = find_session(request, now);
  if (session != nullptr && state_changing(request)) {
    const std::string* token = request.headers.find("x-csrf-token");
    if (token == nullptr || !same_secret(*token, session->csrf))
      return (*respond)(error_response(403, "csrf", "this request needs the session's X-CSRF-Token header"));
  }
  if (path == "/api/register") {
    if (method != "POST") return (*respond)(method_not_allowed("POST"));
    return handle_register(request, respond, now);
  }
  if (path == "/api/login") {
    if (method != "POST") return (*respond)(method_not_allowed("POST"));
    return handle_login(request, respond, now);
  }
  if (path == "/api/login/begin") {
    if (method != "POST") return (*respond)(method_not_allowed("POST"));
    return handle_login_begin(request, respond, now);
  }
  if (path == "/api/logout") {
    if (method != "POST") return (*respond)(method_not_allowed("POST"));
    if (session != nullptr) end_session(session->id, now, true);
    HttpResponse response = no_content();
    response.headers.add("set-cookie", std::string(cookie_name) + "=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict" +
                                           (settings_.secure_cookie ? "; Secure" : ""));
    return (*respond)(std::move(response));
  }
  bool known = path == "/api/session" || path == "/api/lookup" || path == "/api/directory" ||
               path == "/api/directory/categories" || path == "/api/profile" || path == "/api/voicemail" ||
               path.starts_with("/api/voicemail/") || path == "/api/events" || path.starts_with("/api/admin/");
  if (!known) return (*respond)(error_response(404, "not_found", "no such API endpoint"));
  if (session == nullptr)
    return (*respond)(error_response(401, "unauthenticated", "log in first (no session, or it expired)"));
  session->last_request_ms = now.mono_ms;
  if (path == "/api/session") {
    if (method != "GET") return (*respond)(method_not_allowed("GET"));
    return answer_session(session->id, respond, {}, now);
  }
  if (path == "/api/events")
    return (*respond)(error_response(400, "bad_request", "open /api/events as a WebSocket"));
  if (path == "/api/lookup") {
    if (method != "GET") return (*respond)(method_not_allowed("GET"));
    return handle_lookup(*session, request, respond, now);
  }
  if (path == "/api/directory") {
    if (method != "GET") return (*respond)(method_not_allowed("GET"));
    return handle_directory(*session, request, respond, now);
  }
  if (path == "/api/directory/categories") {
    if (method != "GET") return (*respond)(method_not_allowed("GET"));
    return handle_categories(*session, respond, now);
  }
  if (path == "/api/profile") {
    if (method != "GET" && method != "PUT") return (*respond)(method_not_allowed("GET, PUT"));
    return handle_profile(*session, request, respond, now);
  }
  if (path == "/api/voicemail") {
    if (method == "GET") return handle_voicemail_list(*session, request, respond, now);
    if (method == "POST") return handle_voicemail_upload(*session, request, respond, now);
    return (*respond)(method_not_allowed("GET, POST"));
  }
  if (path.starts_with("/api/voicemail/")) {
    auto id = parse_number(std::string_view(path).substr(std::string_view("/api/voicemail/").size()));
    if (!id) return (*respond)(error_response(404, "not_found", "no such message"));
    if (method == "GET") return handle_voicemail_fetch(*session, *id, respond, now);
    if (method == "DELETE") return handle_voicemail_delete(*session, *id, respond, now);
    return (*respond)(method_not_allowed("GET, DELETE"));
  }
  return handle_admin(*session, request, respond, now);
}

void WebApi::handle_register(const HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now) {
  auto body = read_json(request, settings_.max_json_body);
  if (!body) return (*respond)(std::move(body.error()));
  // "credentials": what the page sends, SCRAM credentials it derived, never the password.
  auto fields = string_fields(*body, {"id", "password", "credentials", "display_name"});
  if (!fields) return (*respond)(error_response(400, "bad_request", fields.error().message));
  const auto& [id, password, credentials, name] = *fields;
  if (!id || (!password && !credentials))
    return (*respond)(error_response(400, "bad_request", "\"id\" and \"credentials\" (or \"password\") are required"));
  LinkId link = open_link(request, now);
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::register_user, txn);
  b.add_string(sig::attr::user_id, *id);
  if (credentials)
    b.add_string(sig::attr::scram_credentials, *credentials);
  else
    b.add_string(sig::attr::password, *password);
  if (name) b.add_string(sig::attr::display_name, *name);
  send(
      link, std::move(b), txn,
      [this, link, respond](const proto::Message& reply, Now at) {
        drop_link(link, at);
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        (*respond)(json_response(201, json{{"id", text_of(reply, sig::attr::user_id)}}));
      },
      [respond] { (*respond)(error_response(503, "unavailable", "the node closed the request; try again")); }, now);
}

void WebApi::handle_login(const HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now) {
  auto body = read_json(request, settings_.max_json_body);
  if (!body) return (*respond)(std::move(body.error()));
  auto fields = string_fields(*body, {"exchange", "client_final", "id", "password"});
  if (!fields) return (*respond)(error_response(400, "bad_request", fields.error().message));
  const auto& [exchange, client_final, id, password] = *fields;
  if (exchange || client_final) {
    if (!exchange || !client_final)
      return (*respond)(error_response(400, "bad_request", "\"exchange\" and \"client_final\" go together"));
    return handle_scram_login(*exchange, *client_final, respond, now);
  }
  // The password form: API clients, and the page's one fallback for an
  // account still holding a scrypt hash (docs/security.md, "Logins").
  if (!id || !password) return (*respond)(error_response(400, "bad_request", "\"id\" and \"password\" are required"));
  if (sessions_.size() >= settings_.max_sessions)
    return (*respond)(error_response(503, "unavailable", "too many web sessions on this node; try again later"));
  // A login over an existing session replaces it.
  if (Session* old = find_session(request, now)) end_session(old->id, now, true);
  LinkId link = open_link(request, now);
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::login, txn);
  b.add_string(sig::attr::user_id, *id);
  b.add_string(sig::attr::password, *password);
  // A query link: a browser is not a terminal that can be rung.
  b.add_u32(sig::attr::link_role, sig::link_role::query);
  std::string user = *id;
  send(
      link, std::move(b), txn,
      [this, link, respond, user](const proto::Message& reply, Now at) {
        if (error_of(reply)) {
          drop_link(link, at);
          return (*respond)(from_core_error(reply));
        }
        start_session(link, user, {}, respond, at);
      },
      [respond] { (*respond)(error_response(503, "unavailable", "the node closed the login; try again")); }, now);
}

void WebApi::handle_login_begin(const HttpRequest& request, const std::shared_ptr<Respond>& respond, Now now) {
  auto body = read_json(request, settings_.max_json_body);
  if (!body) return (*respond)(std::move(body.error()));
  auto client_first = string_field(*body, "client_first");
  if (!client_first) return (*respond)(error_response(400, "bad_request", client_first.error().message));
  if (!*client_first) return (*respond)(error_response(400, "bad_request", "\"client_first\" is required"));
  auto parsed = security::scram::parse_client_first(**client_first);
  if (!parsed) return (*respond)(error_response(400, "bad_request", std::string(parsed.error().detail)));
  // Exchanges a page began and never finished go after the core's login timeout would close them anyway.
  constexpr uint64_t exchange_lifetime_ms = 20'000;
  for (auto it = login_exchanges_.begin(); it != login_exchanges_.end();) {
    if (now.mono_ms - it->second.begun_ms > exchange_lifetime_ms) {
      drop_link(it->second.link, now);
      it = login_exchanges_.erase(it);
    } else {
      ++it;
    }
  }
  if (sessions_.size() + login_exchanges_.size() >= settings_.max_sessions)
    return (*respond)(error_response(503, "unavailable", "too many web sessions on this node; try again later"));
  LinkId link = open_link(request, now);
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::login_begin, txn);
  b.add_string(sig::attr::scram_client_first, **client_first);
  std::string user = parsed->username;
  send(
      link, std::move(b), txn,
      [this, link, respond, user](const proto::Message& reply, Now at) {
        if (error_of(reply)) {
          drop_link(link, at);
          return (*respond)(from_core_error(reply));
        }
        std::string exchange = random_token();
        login_exchanges_[exchange] = LoginExchange{link, user, at.mono_ms};
        (*respond)(json_response(200, json{{"exchange", exchange},
                                           {"server_first", text_of(reply, sig::attr::scram_server_first)}}));
      },
      [respond] { (*respond)(error_response(503, "unavailable", "the node closed the login; try again")); }, now);
}

void WebApi::handle_scram_login(const std::string& exchange, const std::string& client_final,
                                const std::shared_ptr<Respond>& respond, Now now) {
  auto it = login_exchanges_.find(exchange);
  if (it == login_exchanges_.end())
    return (*respond)(error_response(401, "unauthenticated", "no such login exchange (it expired?); log in again"));
  LoginExchange begun = it->second;
  login_exchanges_.erase(it);
  if (sessions_.size() >= settings_.max_sessions) {
    drop_link(begun.link, now);
    return (*respond)(error_response(503, "unavailable", "too many web sessions on this node; try again later"));
  }
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::login, txn);
  b.add_string(sig::attr::scram_client_final, client_final);
  b.add_u32(sig::attr::link_role, sig::link_role::query);
  LinkId link = begun.link;
  std::string user = begun.user;
  send(
      link, std::move(b), txn,
      [this, link, respond, user](const proto::Message& reply, Now at) {
        if (error_of(reply)) {
          drop_link(link, at);
          return (*respond)(from_core_error(reply));
        }
        start_session(link, user, text_of(reply, sig::attr::scram_server_final), respond, at);
      },
      [respond] { (*respond)(error_response(503, "unavailable", "the node closed the login; try again")); }, now);
}

void WebApi::start_session(LinkId link, const std::string& user, std::string server_final,
                           const std::shared_ptr<Respond>& respond, Now at) {
  auto session = std::make_unique<Session>();
  session->id = next_session_++;
  session->link = link;
  session->user = user;
  std::string token = random_token();
  session->token_hash = token_hash(token);
  session->csrf = random_token();
  session->created_ms = session->last_request_ms = session->last_core_ms = at.mono_ms;
  uint64_t id_value = session->id;
  session_by_token_hash_[session->token_hash] = id_value;
  session_by_link_[link] = id_value;
  sessions_[id_value] = std::move(session);
  std::string cookie = std::string(cookie_name) + "=" + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                       std::to_string(settings_.session_max_s) + (settings_.secure_cookie ? "; Secure" : "");
  answer_session(id_value, respond, std::move(cookie), at, std::move(server_final));
}

// Login's answer (and GET /api/session's): the display name from the
// profile and whether voicemail waits, both asked on the session's link;
// the admin role from the account record, read through the store (the
// protocol's login answer carries no role: the role is the web's alone).
void WebApi::answer_session(uint64_t id, const std::shared_ptr<Respond>& respond, std::string set_cookie, Now now,
                            std::string server_final) {
  Session& session = *sessions_.at(id);
  auto lost = [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); };
  auto profile_txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::profile_get, profile_txn);
  LinkId link = session.link;
  send(
      link, std::move(b), profile_txn,
      [this, id, link, respond, lost, set_cookie, server_final](const proto::Message& profile, Now at) {
        if (error_of(profile)) return (*respond)(from_core_error(profile));
        std::string display_name = text_of(profile, sig::attr::display_name);
        auto list_txn = fresh_transaction();
        proto::MessageBuilder list = core_message(proto::MessageClass::request, sig::method::voicemail_list, list_txn);
        send(
            link, std::move(list), list_txn,
            [this, id, respond, set_cookie, display_name, server_final](const proto::Message& messages, Now) {
              auto it = sessions_.find(id);
              if (it == sessions_.end()) return (*respond)(error_response(401, "unauthenticated", "the session ended"));
              Session& s = *it->second;
              bool waiting = !error_of(messages) && messages.find(sig::attr::voicemail_entry) != nullptr;
              if (!error_of(messages)) s.newest_voicemail = std::max(s.newest_voicemail, newest_listed(messages));
              core_.commit_turn();  // no write transaction of the core's open beside ours
              auto account = read_session_account(s.user);
              bool admin = account && account->admin;
              json answer{{"id", s.user},
                          {"display_name", display_name},
                          {"admin", admin},
                          {"csrf_token", s.csrf},
                          {"voicemail_waiting", waiting}};
              // The node's ServerSignature, which the page checks (docs/web.md, "Log in").
              if (!server_final.empty()) answer["server_final"] = server_final;
              HttpResponse response = json_response(200, answer);
              if (!set_cookie.empty()) response.headers.add("set-cookie", set_cookie);
              (*respond)(std::move(response));
            },
            lost, at);
      },
      lost, now);
}

void WebApi::handle_lookup(Session& session, const HttpRequest& request, const std::shared_ptr<Respond>& respond,
                           Now now) {
  const std::string* id = request.query_value("id");
  if (id == nullptr || id->empty()) return (*respond)(error_response(400, "bad_request", "give ?id=USER-ID"));
  if (id->size() > sig::max_user_id_size || !sig::valid_user_id(*id))
    return (*respond)(error_response(422, "invalid_user_id", "not a user ID, EXT@DOMAIN or +NUMBER"));
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::lookup, txn);
  b.add_string(sig::attr::user_id, *id);
  std::string asked = *id;
  send(
      session.link, std::move(b), txn,
      [respond, asked](const proto::Message& reply, Now) {
        json answer{{"id", asked}};
        auto error = error_of(reply);
        if (error && error->code != sig::error::offline) return (*respond)(from_core_error(reply));
        std::string name = text_of(reply, sig::attr::display_name);
        if (!name.empty()) answer["display_name"] = name;
        uint32_t services = u32_of(reply, sig::attr::services).value_or(0);
        answer["voicemail"] = (services & sig::service_flag::voicemail) != 0;
        answer["state"] = presence_state(reply).value_or("offline");
        if (auto seen = u64_of(reply, sig::attr::last_seen); seen && *seen != 0) answer["last_seen"] = *seen;
        (*respond)(json_response(200, answer));
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_directory(Session& session, const HttpRequest& request, const std::shared_ptr<Respond>& respond,
                              Now now) {
  const std::string* q = request.query_value("q");
  const std::string* kind_name = request.query_value("kind");
  const std::string* cursor = request.query_value("cursor");
  const std::string* limit = request.query_value("limit");
  uint32_t kind = sig::directory_kind::name;
  if (kind_name != nullptr) {
    if (*kind_name == "name") kind = sig::directory_kind::name;
    else if (*kind_name == "prefix") kind = sig::directory_kind::name_prefix;
    else if (*kind_name == "business") kind = sig::directory_kind::business;
    else if (*kind_name == "phone") kind = sig::directory_kind::phone;
    else return (*respond)(error_response(400, "bad_request", "kind is name, prefix, business or phone"));
  }
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::directory_search, txn);
  b.add_u32(sig::attr::directory_kind, kind);
  b.add_string(sig::attr::directory_query, q ? std::string_view(*q).substr(0, 1024) : std::string_view());
  if (cursor != nullptr && !cursor->empty())
    b.add_string(sig::attr::directory_cursor, std::string_view(*cursor).substr(0, 1024));
  if (limit != nullptr) {
    auto n = parse_number(*limit);
    if (!n || *n > 1000) return (*respond)(error_response(400, "bad_request", "limit is a number of entries"));
    b.add_u32(sig::attr::directory_limit, static_cast<uint32_t>(*n));
  }
  send(
      session.link, std::move(b), txn,
      [respond](const proto::Message& reply, Now) {
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        json entries = json::array();
        for (const auto* a : reply.find_all(sig::attr::directory_entry)) {
          auto entry = proto::decode_directory_entry(a->value);
          if (!entry) continue;
          entries.push_back(json{{"id", entry->user_id},
                                 {"display_name", entry->display_name},
                                 {"category", entry->category},
                                 {"phone", entry->phone},
                                 {"online", entry->online},
                                 {"verified", entry->verified}});
        }
        json answer{{"entries", entries}};
        if (const auto* next = reply.find(sig::attr::directory_cursor)) answer["next_cursor"] = proto::read_string(*next);
        (*respond)(json_response(200, answer));
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_categories(Session& session, const std::shared_ptr<Respond>& respond, Now now) {
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::directory_categories, txn);
  send(
      session.link, std::move(b), txn,
      [respond](const proto::Message& reply, Now) {
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        json categories = json::array();
        for (const auto* a : reply.find_all(sig::attr::directory_category))
          if (auto c = proto::decode_category_count(a->value))
            categories.push_back(json{{"name", c->name}, {"count", c->count}});
        (*respond)(json_response(200, json{{"categories", categories}}));
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_profile(Session& session, const HttpRequest& request, const std::shared_ptr<Respond>& respond,
                            Now now) {
  auto txn = fresh_transaction();
  bool set = request.method == "PUT";
  proto::MessageBuilder b = core_message(proto::MessageClass::request, set ? sig::method::profile_set : sig::method::profile_get, txn);
  if (set) {
    auto body = read_json(request, settings_.max_json_body);
    if (!body) return (*respond)(std::move(body.error()));
    auto change = profile_change_of(*body);
    if (!change) return (*respond)(error_response(400, "bad_request", change.error()));
    proto::add_profile_change(b, *change);
  }
  send(
      session.link, std::move(b), txn,
      [this, respond, id = session.id](const proto::Message& reply, Now at) {
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        (*respond)(json_response(200, profile_json(reply)));
        if (auto it = sessions_.find(id); it != sessions_.end()) take_contacts(*it->second, reply, at);
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_voicemail_list(Session& session, const HttpRequest& request, const std::shared_ptr<Respond>& respond,
                                   Now now) {
  std::optional<uint64_t> after;
  if (const std::string* text = request.query_value("after")) {
    after = parse_number(*text);
    if (!after) return (*respond)(error_response(400, "bad_request", "?after= takes a message ID"));
  }
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_list, txn);
  if (after) b.add_u64(sig::attr::voicemail_id, *after);
  send(
      session.link, std::move(b), txn,
      [this, respond, id = session.id](const proto::Message& reply, Now) {
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        // What the user has seen is no news for the event socket.
        if (auto it = sessions_.find(id); it != sessions_.end())
          it->second->newest_voicemail = std::max(it->second->newest_voicemail, newest_listed(reply));
        json messages = json::array();
        for (const auto* a : reply.find_all(sig::attr::voicemail_entry))
          if (auto e = proto::decode_voicemail_entry(a->value))
            messages.push_back(json{{"id", e->id}, {"from", e->caller}, {"time", e->time}, {"size", e->size}});
        json answer{{"messages", messages}};
        // More than one page: the core's cursor, for ?after=
        if (auto next = u64_of(reply, sig::attr::voicemail_id)) answer["next_after"] = *next;
        (*respond)(json_response(200, answer));
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_voicemail_fetch(Session& session, uint64_t id, const std::shared_ptr<Respond>& respond, Now now) {
  // One voicemail_fetch per chunk, each sent when the last one's answer came.
  struct Fetch {
    WebApi* api;
    LinkId link;
    uint64_t id;
    std::string bytes;
    std::shared_ptr<Respond> respond;
  };
  auto fetch = std::make_shared<Fetch>(Fetch{this, session.link, id, {}, respond});
  auto next = std::make_shared<std::function<void(Now)>>();
  *next = [fetch, weak = std::weak_ptr<std::function<void(Now)>>(next)](Now at) {
    auto txn = fetch->api->fresh_transaction();
    proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_fetch, txn);
    b.add_u64(sig::attr::voicemail_id, fetch->id);
    b.add_u64(sig::attr::voicemail_offset, fetch->bytes.size());
    auto again = weak.lock();
    fetch->api->send(
        fetch->link, std::move(b), txn,
        [fetch, again](const proto::Message& reply, Now when) {
          if (error_of(reply)) return (*fetch->respond)(from_core_error(reply));
          const auto* data = reply.find(sig::attr::voicemail_data);
          uint64_t size = u64_of(reply, sig::attr::voicemail_size).value_or(0);
          if (data == nullptr || size > max_fetch_bytes)
            return (*fetch->respond)(error_response(500, "server_error", "malformed voicemail answer"));
          fetch->bytes.append(reinterpret_cast<const char*>(data->value.data()), data->value.size());
          if (fetch->bytes.size() < size && !data->value.empty() && again) return (*again)(when);
          HttpResponse response;
          response.status = 200;
          response.headers.add("content-type", std::string(audio_type(fetch->bytes)));
          response.headers.add("cache-control", "no-store");
          response.body = std::move(fetch->bytes);
          (*fetch->respond)(std::move(response));
        },
        [respond = fetch->respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); },
        at);
  };
  // `next` lives as long as a continuation holds it: each reply handler
  // holds the next step strongly, so the chain ends when the last answer came.
  auto start = next;
  (*start)(now);
}

void WebApi::handle_voicemail_delete(Session& session, uint64_t id, const std::shared_ptr<Respond>& respond, Now now) {
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_delete, txn);
  b.add_u64(sig::attr::voicemail_id, id);
  send(
      session.link, std::move(b), txn,
      [respond](const proto::Message& reply, Now) {
        if (error_of(reply)) return (*respond)(from_core_error(reply));
        (*respond)(no_content());
      },
      [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); }, now);
}

void WebApi::handle_voicemail_upload(Session& session, const HttpRequest& request,
                                     const std::shared_ptr<Respond>& respond, Now now) {
  std::string type = media_type(request);
  if (type != "audio/ogg" && type != "audio/webm")
    return (*respond)(error_response(415, "unsupported_media_type", "a recording is audio/ogg or audio/webm"));
  const std::string* to = request.query_value("to");
  if (to == nullptr || to->empty()) return (*respond)(error_response(400, "bad_request", "give ?to=USER-ID"));
  if (to->size() > sig::max_user_id_size || !sig::valid_user_id(*to))
    return (*respond)(error_response(422, "invalid_user_id", "not a user ID or EXT@DOMAIN"));
  if (request.body.empty()) return (*respond)(error_response(400, "bad_request", "an empty recording"));
  if (request.body.size() > settings_.max_recording_body)
    return (*respond)(error_response(413, "payload_too_large", "the recording is larger than " +
                                                                   std::to_string(settings_.max_recording_body) + " bytes"));
  struct Upload {
    WebApi* api;
    LinkId link;
    std::string callee;
    std::string data;
    uint32_t upload = 0;
    size_t sent = 0;
    std::shared_ptr<Respond> respond;
  };
  auto up = std::make_shared<Upload>(Upload{this, session.link, *to, request.body, 0, 0, respond});
  auto lost = [respond] { (*respond)(error_response(401, "unauthenticated", "the session ended")); };
  // begin, then one chunk per answer, then finish (answered after the commit).
  auto step = std::make_shared<std::function<void(Now)>>();
  *step = [up, lost, weak = std::weak_ptr<std::function<void(Now)>>(step)](Now at) {
    auto self = weak.lock();
    auto txn = up->api->fresh_transaction();
    if (up->sent < up->data.size()) {
      size_t count = std::min(sig::max_voicemail_chunk, up->data.size() - up->sent);
      proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_chunk, txn);
      b.add_u32(sig::attr::voicemail_upload, up->upload);
      b.add_u64(sig::attr::voicemail_offset, up->sent);
      b.add(sig::attr::voicemail_data, as_bytes(std::string_view(up->data).substr(up->sent, count)));
      up->sent += count;
      return up->api->send(
          up->link, std::move(b), txn,
          [up, self](const proto::Message& reply, Now when) {
            if (error_of(reply)) return (*up->respond)(from_core_error(reply));
            if (self) (*self)(when);
          },
          lost, at);
    }
    proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_finish, txn);
    b.add_u32(sig::attr::voicemail_upload, up->upload);
    up->api->send(
        up->link, std::move(b), txn,
        [up](const proto::Message& reply, Now) {
          if (error_of(reply)) return (*up->respond)(from_core_error(reply));
          (*up->respond)(json_response(201, json{{"to", up->callee}, {"id", u64_of(reply, sig::attr::voicemail_id).value_or(0)}}));
        },
        lost, at);
  };
  auto txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_begin, txn);
  b.add_string(sig::attr::user_id, *to);
  b.add_u64(sig::attr::voicemail_size, request.body.size());
  send(
      session.link, std::move(b), txn,
      [up, step](const proto::Message& reply, Now at) {
        if (error_of(reply)) return (*up->respond)(from_core_error(reply));
        auto id = u32_of(reply, sig::attr::voicemail_upload);
        if (!id) return (*up->respond)(error_response(500, "server_error", "malformed voicemail answer"));
        up->upload = *id;
        (*step)(at);
      },
      lost, now);
}

void WebApi::handle_admin(Session& session, const HttpRequest& request, const std::shared_ptr<Respond>& respond,
                          Now now) {
  // The core's write transaction of this turn, if any, is committed first:
  // the admin functions run their own (one writer at a time in LMDB).
  core_.commit_turn();
  // The role is read from the record at every request, so taking it away
  // (user set-admin ID off) holds at once.
  auto me = read_session_account(session.user);
  if (!me) return (*respond)(error_response(me.error().code == AccountAdminErrc::storage ? 503 : 401,
                                            me.error().code == AccountAdminErrc::storage ? "unavailable" : "unauthenticated",
                                            me.error().detail));
  // Every change asked for leaves an audit line, done or refused (reads do not).
  std::string audit_action, audit_target;
  auto audited = [&](HttpResponse response) {
    if (audit_action.empty() || request.method == "GET") return (*respond)(std::move(response));
    core_.record_audit(audit::AuditEvent{"admin",
                                         {{"via", "web"},
                                          {"by", session.user},
                                          {"source", request.client_address},
                                          {"action", audit_action},
                                          {"target", audit_target},
                                          {"result", response.status < 300 ? "ok" : "failed"},
                                          {"status", std::to_string(response.status)}}});
    (*respond)(std::move(response));
  };
  if (!me->admin) {
    if (request.method != "GET") {
      audit_action = "forbidden";
      audit_target = request.path.substr(0, 128);
      return audited(error_response(403, "forbidden", "this needs an account with the admin role"));
    }
    return (*respond)(error_response(403, "forbidden", "this needs an account with the admin role"));
  }
  auto admin_error = [](const AccountAdminError& e) {
    switch (e.code) {
      case AccountAdminErrc::invalid_id: return error_response(422, "invalid_user_id", e.detail);
      case AccountAdminErrc::no_such_user: return error_response(404, "not_found", e.detail);
      case AccountAdminErrc::exists:
      case AccountAdminErrc::agent_route:
      case AccountAdminErrc::quarantined: return error_response(409, "conflict", e.detail);
      case AccountAdminErrc::storage: break;
    }
    return error_response(503, "unavailable", e.detail);
  };
  auto check_password = [](const std::string& password) {
    return password.size() >= sig::min_password_size && password.size() <= sig::max_password_size;
  };
  const std::string& path = request.path;
  const std::string& method = request.method;
  const uint64_t unix_now = now.unix_s;
  if (path == "/api/admin/users") {
    if (method == "GET") {
      const std::string* q = request.query_value("q");
      const std::string* cursor = request.query_value("cursor");
      std::string_view text = q ? std::string_view(*q).substr(0, 128) : std::string_view();
      std::string_view after = cursor ? std::string_view(*cursor).substr(0, 256) : std::string_view();
      auto page = shared_accounts_ ? shared_accounts_->list(text, after, admin_page)
                                   : list_accounts(store_, text, after, admin_page);
      if (!page) return audited(admin_error(page.error()));
      json users = json::array();
      for (const auto& a : page->accounts)
        users.push_back(json{{"id", a.user_id},
                             {"display_name", a.display_name},
                             {"admin", a.admin},
                             {"verified", a.verified},
                             {"publish", a.publish},
                             {"created_at", a.created_at}});
      json answer{{"users", users}};
      if (page->next_cursor) answer["next_cursor"] = *page->next_cursor;
      return audited(json_response(200, answer));
    }
    if (method != "POST") return audited(method_not_allowed("GET, POST"));
    audit_action = "user_add";
    auto body = read_json(request, settings_.max_json_body);
    if (!body) return audited(std::move(body.error()));
    if (auto id = string_field(*body, "id"); id && *id) audit_target = **id;
    auto fields = string_fields(*body, {"id", "password", "display_name"});
    if (!fields) return audited(error_response(400, "bad_request", fields.error().message));
    const auto& [id, password, name] = *fields;
    auto admin = bool_field(*body, "admin");
    if (!admin) return audited(error_response(400, "bad_request", admin.error().message));
    if (!id || !password) return audited(error_response(400, "bad_request", "\"id\" and \"password\" are required"));
    if (!check_password(*password)) return audited(error_response(400, "bad_request", "passwords are 8 to 256 bytes"));
    NewAccount account;
    account.user_id = *id;
    account.display_name = name.value_or("");
    if (!proto::valid_profile_text(account.display_name, sig::max_display_name_size))
      return audited(error_response(400, "bad_request",
                                    "display_name is at most 128 bytes of text, without control or bidirectional "
                                    "formatting characters"));
    account.admin = admin->value_or(false);
    account.password_hash = security::scram::stored_credentials(*password, core_.settings().scram_iterations);
    uint32_t quarantine_days = core_.settings().removed_id_quarantine_days;
    auto added = shared_accounts_ ? shared_accounts_->add(account, quarantine_days, unix_now)
                                  : add_account(store_, account, quarantine_days, unix_now);
    if (!added) return audited(admin_error(added.error()));
    return audited(json_response(201, json{{"id", account.user_id}}));
  }
  if (path.starts_with("/api/admin/users/")) {
    std::string_view rest = std::string_view(path).substr(std::string_view("/api/admin/users/").size());
    size_t slash = rest.find('/');
    std::string user(rest.substr(0, slash));
    std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    audit_target = user;
    audit_action = action.empty() ? "user_remove" : "user_" + std::string(action).substr(0, 32);
    if (action.empty()) {
      if (method != "DELETE") return audited(method_not_allowed("DELETE"));
      if (shared_accounts_) {
        if (auto removed = shared_accounts_->remove(user, unix_now); !removed) return audited(admin_error(removed.error()));
        return audited(no_content());
      }
      auto removed = remove_account(store_, user, unix_now);
      if (!removed) return audited(admin_error(removed.error()));
      return audited(no_content());
    }
    if (method != "POST") return audited(method_not_allowed("POST"));
    if (shared_accounts_ && (action == "password" || action == "verify" || action == "admin"))
      return audited(not_in_cluster_mode("a password reset, verify and the admin role"));
    if (action == "password") {
      auto body = read_json(request, settings_.max_json_body);
      if (!body) return audited(std::move(body.error()));
      auto password = string_field(*body, "password");
      if (!password) return audited(error_response(400, "bad_request", password.error().message));
      if (!*password || !check_password(**password))
        return audited(error_response(400, "bad_request", "\"password\" of 8 to 256 bytes is required"));
      auto changed = reset_password(store_, user, security::scram::stored_credentials(**password, core_.settings().scram_iterations));
      if (!changed) return audited(admin_error(changed.error()));
      return audited(no_content());
    }
    if (action == "verify" || action == "admin") {
      // The body is optional for verify ({"verified": false} takes it back).
      std::optional<bool> value;
      if (!request.body.empty() || action == "admin") {
        auto body = read_json(request, settings_.max_json_body);
        if (!body) return audited(std::move(body.error()));
        auto field = bool_field(*body, action == "verify" ? "verified" : "admin");
        if (!field) return audited(error_response(400, "bad_request", field.error().message));
        value = *field;
      }
      if (action == "admin" && !value) return audited(error_response(400, "bad_request", "\"admin\" is required"));
      auto changed = action == "verify" ? set_verified(store_, user, value.value_or(true)) : set_admin(store_, user, *value);
      if (!changed) return audited(admin_error(changed.error()));
      return audited(no_content());
    }
    return audited(error_response(404, "not_found", "no such API endpoint"));
  }
  if (method != "GET") return (*respond)(method_not_allowed("GET"));
  if (path == "/api/admin/cards" || path.starts_with("/api/admin/cards/")) {
    // The seam for cards on PostgreSQL: the ledger is still this node's LMDB alone.
    if (shared_accounts_) return (*respond)(not_in_cluster_mode("access cards"));
    return handle_admin_cards(request, respond);
  }
  if (path == "/api/admin/agents" && shared_accounts_)
    return (*respond)(not_in_cluster_mode("the agents view (agent --pg CONNINFO list shows the enrolments)"));
  if (path == "/api/admin/agents") {
    if (!registry_) return (*respond)(error_response(503, "unavailable", "the agent registry did not open"));
    auto txn = store_.begin_read();
    if (!txn) return (*respond)(error_response(503, "unavailable", txn.error().detail));
    auto agents = registry_->list(*txn);
    if (!agents) return (*respond)(error_response(503, "unavailable", agents.error().detail));
    std::vector<std::string> linked = core_.linked_agents();
    json list = json::array();
    for (const auto& a : *agents)
      list.push_back(json{{"name", a.name},
                          {"domains", a.domains},
                          {"prefixes", a.number_prefixes},
                          {"enrolled_at", a.enrolled_at},
                          {"linked", std::binary_search(linked.begin(), linked.end(), a.name)}});
    return (*respond)(json_response(200, json{{"agents", list},
                                              {"forwarded_lookups", core_.counters().forwarded_lookups},
                                              {"forward_timeouts", core_.counters().forward_timeouts}}));
  }
  if (path == "/api/admin/calls") {
    const auto& c = core_.counters();
    json calls = json::array();
    for (const auto& call : core_.calls_view())
      calls.push_back(json{{"caller", call.caller}, {"callee", call.callee}, {"state", call.state},
                           {"via_agent", call.via_agent}});
    return (*respond)(json_response(200, json{{"calls", calls},
                                              {"in_progress", core_.calls_in_progress()},
                                              {"offered", c.calls_offered},
                                              {"accepted", c.calls_accepted}}));
  }
  if (path == "/api/admin/voicemail") {
    auto read_totals = [this]() -> Expected<VoicemailStore::Totals, storage::StoreError> {
      if (shared_voicemail_) return shared_voicemail_->totals("");
      if (!voicemail_) return Unexpected(storage::StoreError{storage::StoreErrc::other, 0, "the voicemail store did not open"});
      auto txn = store_.begin_read();
      if (!txn) return Unexpected(txn.error());
      return voicemail_->totals(*txn, "");
    };
    auto totals = read_totals();
    if (!totals) return (*respond)(error_response(503, "unavailable", totals.error().detail));
    const auto& c = core_.counters();
    return (*respond)(json_response(200, json{{"messages", totals->all.messages},
                                              {"bytes", totals->all.bytes},
                                              {"uploading_bytes", core_.uploads_in_progress_bytes()},
                                              {"stored", c.voicemails_stored},
                                              {"deleted", c.voicemails_deleted}}));
  }
  return (*respond)(error_response(404, "not_found", "no such API endpoint"));
}

namespace {
// The holder's or the issuer's password (docs/cards.md): which one the node checks.
const char* card_password_state(const CardAccount& card) {
  if (card.password_hash.empty()) return "none";
  return card.password_set_at > 0 ? "holder" : "issuer";
}

json card_summary(const CardAccount& card) {
  return json{{"serial", card.serial}, {"card_id", card.card_id}, {"units_left", card.units_left},
              {"units_issued", card.units_issued}, {"revoked", card.revoked}, {"expires_at", card.expires_at}};
}

json card_event_json(const CardEvent& event) {
  json out{{"sequence", event.sequence}, {"event", card_event_name(event.kind)}, {"time", event.time},
           {"units", event.units}, {"units_left", event.units_left}, {"note", event.note}};
  // A debit's note is node_cards.cpp's "call ID route NAME": its parts for the page.
  std::string_view note = event.note;
  size_t route = note.find(" route ");
  if (event.kind == CardEventKind::debit && note.starts_with("call ") && route != std::string_view::npos) {
    out["call"] = note.substr(5, route - 5);
    out["route"] = note.substr(route + 7);
  }
  return out;
}
}  // namespace

void WebApi::handle_admin_cards(const HttpRequest& request, const std::shared_ptr<Respond>& respond) {
  if (!card_ledger_ || !card_accounts_)
    return (*respond)(error_response(503, "unavailable", "the card ledger did not open"));
  auto txn = store_.begin_read();
  if (!txn) return (*respond)(error_response(503, "unavailable", txn.error().detail));
  auto number_query = [&](const char* name) -> Expected<uint64_t, HttpResponse> {
    const std::string* text = request.query_value(name);
    if (text == nullptr) return uint64_t{0};
    auto value = parse_number(*text);
    if (!value) return Unexpected(error_response(400, "bad_request", std::string(name) + " must be a whole number"));
    return *value;
  };
  if (request.path == "/api/admin/cards") {
    auto after = number_query("cursor");  // the last serial of the page before
    if (!after) return (*respond)(std::move(after.error()));
    std::array<std::byte, 8> from{};
    if (*after == std::numeric_limits<uint64_t>::max()) return (*respond)(json_response(200, json{{"cards", json::array()}}));
    store_be64(from.data(), *after + 1);
    json cards = json::array();
    bool more = false, corrupt = false;
    auto scanned = txn->scan(*card_accounts_, ByteView(from), [&](ByteView key, ByteView value) {
      if (key.size() != 8) return true;
      if (cards.size() == admin_page) {
        more = true;
        return false;
      }
      auto card = decode_card_account(value, load_be64(key.data()));
      if (!card) {
        corrupt = true;
        return false;
      }
      cards.push_back(card_summary(*card));
      return true;
    });
    if (!scanned) return (*respond)(error_response(503, "unavailable", scanned.error().detail));
    if (corrupt) return (*respond)(error_response(503, "unavailable", "a card account record does not decode"));
    json answer{{"cards", cards}};
    if (more) answer["next_cursor"] = std::to_string(cards.back()["serial"].get<uint64_t>());
    return (*respond)(json_response(200, answer));
  }
  auto serial = parse_number(std::string_view(request.path).substr(std::string_view("/api/admin/cards/").size()));
  if (!serial) return (*respond)(error_response(400, "bad_request", "a card's serial is a whole number"));
  auto card = card_ledger_->find(*txn, *serial);
  if (!card) return (*respond)(error_response(503, "unavailable", card.error().detail));
  if (!*card) return (*respond)(error_response(404, "not_found", "no card with serial " + std::to_string(*serial)));
  auto from = number_query("from");  // the first history sequence to show
  if (!from) return (*respond)(std::move(from.error()));
  auto history = card_ledger_->history(*txn, *serial, *from, admin_page);
  if (!history) return (*respond)(error_response(503, "unavailable", history.error().detail));
  const CardAccount& c = **card;
  json answer = card_summary(c);
  answer["issued_at"] = c.issued_at;
  if (c.revoked) answer["revoked_at"] = c.revoked_at;
  answer["password"] = card_password_state(c);
  if (c.password_set_at > 0) answer["password_set_at"] = c.password_set_at;
  answer["events"] = c.events;
  json events = json::array();
  for (const CardEvent& e : *history) events.push_back(card_event_json(e));
  answer["history"] = events;
  if (!history->empty() && history->back().sequence + 1 < c.events) answer["next_from"] = history->back().sequence + 1;
  return (*respond)(json_response(200, answer));
}

void WebApi::core_action(const NodeAction& action, Now now) {
  if (action.kind == NodeAction::Kind::close) {
    if (auto it = session_by_link_.find(action.link); it != session_by_link_.end())
      end_session(it->second, now, true);
    else
      drop_link(action.link, now);
    return;
  }
  auto decoded = proto::decode(action.message);
  if (!decoded) return;  // the core sends what decodes; nothing to answer anyway
  const proto::Message& message = decoded->message;
  if (message.message_class == proto::MessageClass::success || message.message_class == proto::MessageClass::error) {
    auto it = pending_.find(key_of(message.transaction_id));
    if (it == pending_.end() || it->second.link != action.link) return;
    OnReply on_reply = std::move(it->second.on_reply);
    pending_.erase(it);
    if (on_reply) on_reply(message, now);
    return;
  }
  if (browser_call_message(action.link, message, now)) return;
  if (message.message_class == proto::MessageClass::indication && message.method == sig::method::notice) {
    auto it = session_by_link_.find(action.link);
    if (it == session_by_link_.end()) return;
    emit(*sessions_.at(it->second), dump(json{{"type", "notice"},
                                               {"code", u32_of(message, sig::attr::notice_code).value_or(0)},
                                               {"reason", text_of(message, sig::attr::notice_reason)}}));
  }
}

void WebApi::tick(Now now) {
  std::vector<uint64_t> expired;
  std::vector<LinkId> keep;
  std::vector<uint64_t> refresh;
  for (const auto& [id, session] : sessions_) {
    if (now.mono_ms >= session->last_request_ms + uint64_t{settings_.session_idle_s} * 1000 ||
        now.mono_ms >= session->created_ms + uint64_t{settings_.session_max_s} * 1000)
      expired.push_back(id);
    else if (now.mono_ms >= session->last_core_ms + uint64_t{settings_.link_keepalive_s} * 1000)
      (session->subscriber ? refresh : keep).push_back(session->subscriber ? id : session->link);
  }
  for (uint64_t id : expired) end_session(id, now, true);
  // A page that takes calls holds the user's presence: only a keepalive refreshes that.
  for (uint64_t id : refresh)
    if (auto page = pages_.find(id); page != pages_.end() && page->second.available) keep.push_back(link_of(id));
  // A session with a live event socket rereads its contacts instead of a
  // bare keepalive (either keeps the link): contacts changed from another
  // link (a terminal's profile_set) are followed from then on.
  for (uint64_t id : refresh) refresh_contacts(id, now);
  for (LinkId link : keep) {
    auto txn = fresh_transaction();
    proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::keepalive, txn);
    send(link, std::move(b), txn, nullptr, nullptr, now);
  }
}

void WebApi::mailbox_changed(const std::vector<std::string>& users, Now now) {
  if (users.empty()) return;
  std::vector<uint64_t> listening;
  for (const auto& [id, session] : sessions_)
    if (session->subscriber && std::find(users.begin(), users.end(), session->user) != users.end())
      listening.push_back(id);
  // The session's own list (the core's rules): a message newer than any it
  // listed is news, whoever left it.
  for (uint64_t id : listening) {
    auto txn = fresh_transaction();
    proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::voicemail_list, txn);
    send(sessions_.at(id)->link, std::move(b), txn, [this, id](const proto::Message& reply, Now) {
      auto it = sessions_.find(id);
      if (it == sessions_.end() || error_of(reply)) return;
      uint64_t newest = newest_listed(reply);
      if (newest <= it->second->newest_voicemail) return;
      it->second->newest_voicemail = newest;
      emit(*it->second, dump(json{{"type", "voicemail_waiting"}}));
    }, nullptr, now);
  }
}

LinkId WebApi::link_of(uint64_t session) const {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : it->second->link;
}

void WebApi::emit_to(uint64_t session, std::string event) {
  if (auto it = sessions_.find(session); it != sessions_.end()) emit(*it->second, std::move(event));
}

std::optional<uint64_t> WebApi::session_on(LinkId link) const {
  auto it = session_by_link_.find(link);
  if (it == session_by_link_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> WebApi::next_deadline() const {
  std::optional<uint64_t> next;
  for (const auto& [id, session] : sessions_) {
    uint64_t due = std::min({session->last_request_ms + uint64_t{settings_.session_idle_s} * 1000,
                             session->created_ms + uint64_t{settings_.session_max_s} * 1000,
                             session->last_core_ms + uint64_t{settings_.link_keepalive_s} * 1000});
    next = next ? std::min(*next, due) : due;
  }
  return next;
}

}  // namespace tsunagu::rendezvous
