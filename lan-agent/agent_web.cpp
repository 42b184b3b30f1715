#include "lan-agent/agent_web.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "allocation/field_normalisation.hpp"
#include "lan-agent/table_view.hpp"
#include "proto/profile_change.hpp"
#include "web/prometheus.hpp"

namespace tsunagu::lanagent {
namespace {

using nlohmann::json;

const std::string* header(const web::HttpRequest& request, std::string_view name) {
  return request.headers.find(name);
}

const std::string* query(const web::HttpRequest& request, std::string_view name) {
  return request.query_value(name);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> cookie(const web::HttpRequest& request, std::string_view name) {
  return web::find_cookie(request.headers, name);
}

std::optional<std::string_view> bearer(const web::HttpRequest& request) {
  const std::string* authorization = header(request, "authorization");
  if (authorization == nullptr) return std::nullopt;
  std::string_view value = trim(*authorization);
  if (value.size() < 7 || !web::equals_ignoring_case(value.substr(0, 7), "bearer ")) return std::nullopt;
  return trim(value.substr(7));
}

bool authorized(const web::HttpRequest& request, std::string_view token) {
  if (auto presented = bearer(request)) return tokens_equal(*presented, token);
  if (auto presented = cookie(request, kAgentTokenCookie)) return tokens_equal(*presented, token);
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One field of an application/x-www-form-urlencoded body.
std::optional<std::string> form_field(std::string_view body, std::string_view name) {
  while (!body.empty()) {
    size_t end = body.find('&');
    std::string_view pair = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::string out;
    std::string_view raw = pair.substr(eq + 1);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 && hex_value(raw[i + 2]) >= 0) {
        out += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
        i += 2;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return std::nullopt;
}

void add_header(web::HttpResponse& response, std::string name, std::string value) {
  response.headers.entries.emplace_back(std::move(name), std::move(value));
}

web::HttpResponse respond(int status, std::string content_type, std::string body) {
  web::HttpResponse response;
  response.status = status;
  add_header(response, "content-type", std::move(content_type));
  add_header(response, "content-security-policy", std::string(kAgentContentSecurityPolicy));
  add_header(response, "x-content-type-options", "nosniff");
  add_header(response, "referrer-policy", "no-referrer");
  add_header(response, "cache-control", "no-store");
  response.body = std::move(body);
  return response;
}

web::HttpResponse json_error(int status, std::string_view code, std::string_view message) {
  json body = {{"error", code}, {"message", message}};
  return respond(status, "application/json", body.dump());
}

std::string token_cookie(std::string_view value, bool clear) {
  std::string cookie = std::string(kAgentTokenCookie) + "=" + std::string(value) +
                       "; HttpOnly; Secure; SameSite=Strict; Path=/";
  if (clear) cookie += "; Max-Age=0";
  return cookie;
}

constexpr std::string_view kStyle = R"(body{font-family:sans-serif;margin:1rem;max-width:72rem;color:#111;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
.up{color:#064}.down{color:#a00}.conflict{color:#a00;font-weight:bold}
.summary dt{font-weight:bold}.summary dd{margin:0 0 .5rem 0}
label{display:block;margin:.5rem 0}input{font-size:1rem;padding:.3rem}
@media (max-width:40rem){table{font-size:.8rem}th,td{padding:.2rem}}
)";

// Keeps the page current: asks /api/status every data-poll seconds and
// rewrites the tables' rows as text (textContent: a hostname stays text). The
// page works without it; it is the server's rendering until the first answer.
constexpr std::string_view kScript = R"('use strict';
(function () {
  var interval = Number(document.body.dataset.poll || '0');
  if (!(interval > 0)) return;
  function setText(id, value, className) {
    var element = document.getElementById(id);
    if (!element) return;
    element.textContent = value;
    if (className !== undefined) element.className = className;
  }
  function fill(id, items, cellsOf) {
    var body = document.getElementById(id);
    if (!body) return;
    var rows = items.map(function (item) {
      var row = document.createElement('tr');
      cellsOf(item).forEach(function (cell) {
        var td = document.createElement('td');
        td.textContent = cell[0];
        if (cell[1]) td.className = cell[1];
        row.appendChild(td);
      });
      return row;
    });
    body.replaceChildren.apply(body, rows);
  }
  function render(s) {
    var link = s.node_link;
    if (!link.configured) setText('node-link', 'not configured (LAN table only)', '');
    else setText('node-link', link.up ? 'up' : 'down', link.up ? 'up' : 'down');
    setText('node-connects', String(link.connects));
    setText('spool-depth', s.spool.files + ' file(s), ' + s.spool.bytes + ' byte(s) waiting');
    setText('status-time', s.time_text);
    fill('allocation-rows', s.allocations, function (a) {
      return [[a.extension || '-'], [a.client], [a.address || '-'], [a.hostname], [a.expires_text],
              [a.source || '-'], [String(a.conflicts), a.conflicts ? 'conflict' : '']];
    });
    fill('conflict-rows', s.conflicts, function (c) {
      return [[c.extension], [c.client], [c.hostname], [c.address], [c.last_seen_text], [String(c.attempts)]];
    });
    fill('event-rows', s.recent_events, function (e) {
      return [[e.time_text], [e.path], [e.source], [e.action], [e.address], [e.client], [e.hostname]];
    });
  }
  function poll() {
    fetch('/api/status', {credentials: 'same-origin', cache: 'no-store'})
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (status) { if (status) render(status); })
      .catch(function () {})
      .finally(function () { setTimeout(poll, interval * 1000); });
  }
  setTimeout(poll, interval * 1000);
})();
)";

std::string client_of(const alloc::LeaseRecord& lease) {
  return lease.mac.empty() ? "client-id " + lease.client_id : lease.mac;
}

std::string client_of(const alloc::ClientRef& client) {
  return client.kind == alloc::ClientRef::Kind::mac ? client.value : "client-id " + client.value;
}

struct AllocationRow {
  std::string extension;  // "" when no extension is bound to the client
  std::string client;
  std::string address;  // "" without a live lease
  std::string hostname;
  std::string source;
  bool leased = false;
  int64_t expires = 0;  // LeaseRecord::expires (0 unknown, kInfinite never)
  int64_t live_until = 0;
  size_t conflicts = 0;
};

std::vector<AllocationRow> allocation_rows(const AgentStatusInput& in) {
  std::map<std::string, size_t> conflicts;
  for (const auto& c : in.conflicts) ++conflicts[c.extension];
  std::vector<AllocationRow> rows;
  std::map<std::string, bool> leased;
  for (const auto& lease : in.leases) {
    AllocationRow row;
    row.extension = extension_of(lease, in.bindings);
    row.client = client_of(lease);
    row.address = alloc::ip_to_string(lease.address);
    // Rows from before the hook decoder refused them may hold controls or
    // bidirectional overrides: shown as text, U+FFFD for those.
    row.hostname = proto::printable_text(lease.hostname);
    row.source = std::string(alloc::to_string(lease.source));
    row.leased = true;
    row.expires = lease.expires;
    row.live_until = lease.live_until;
    if (!row.extension.empty()) {
      leased[row.extension] = true;
      row.conflicts = conflicts[row.extension];
    }
    rows.push_back(std::move(row));
  }
  for (const auto& binding : in.bindings) {
    if (leased.count(binding.extension)) continue;
    AllocationRow row;
    row.extension = binding.extension;
    row.client = client_of(binding.client);
    row.conflicts = conflicts[binding.extension];
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const AllocationRow& a, const AllocationRow& b) {
    if (a.extension.empty() != b.extension.empty()) return b.extension.empty();
    return a.extension < b.extension;
  });
  return rows;
}

std::string expiry_text(const AllocationRow& row, int64_t now) {
  if (!row.leased) return "no live lease";
  if (row.expires == alloc::LeaseEvent::kInfinite) return "never";
  return format_remaining(row.live_until - now) + (row.expires == alloc::LeaseEvent::kUnknownExpiry ? " (assumed)" : "");
}

json expiry_json(int64_t value) {
  if (value == alloc::LeaseEvent::kInfinite) return "never";
  if (value == alloc::LeaseEvent::kUnknownExpiry) return nullptr;
  return value;
}

std::string event_client(const alloc::LeaseEvent& event) {
  return event.mac.empty() ? (event.client_id.empty() ? "" : "client-id " + event.client_id) : event.mac.str();
}

json status_json(const AgentStatusInput& in) {
  const AgentMetricsInput& m = in.metrics;
  json out;
  out["agent"] = in.agent_name;
  out["time"] = in.now;
  out["time_text"] = format_time(in.now);
  out["node_link"] = {{"configured", m.node_configured}, {"up", m.node_linked}, {"connects", m.node_connects}};
  out["spool"] = {{"files", m.spool.files}, {"bytes", m.spool.bytes}};
  if (!in.table_error.empty()) out["table_error"] = in.table_error;
  json rows = json::array();
  for (const auto& row : allocation_rows(in)) {
    json r = {{"extension", row.extension.empty() ? json(nullptr) : json(row.extension)},
              {"client", row.client},
              {"address", row.leased ? json(row.address) : json(nullptr)},
              {"hostname", row.hostname},
              {"source", row.leased ? json(row.source) : json(nullptr)},
              {"expires", row.leased ? expiry_json(row.expires) : json(nullptr)},
              {"live_until", row.leased ? json(row.live_until) : json(nullptr)},
              {"expires_text", expiry_text(row, in.now)},
              {"conflicts", row.conflicts}};
    rows.push_back(std::move(r));
  }
  out["allocations"] = std::move(rows);
  json conflicts = json::array();
  for (const auto& c : in.conflicts)
    conflicts.push_back({{"extension", c.extension},
                         {"client", client_of(c.claimant)},
                         {"hostname", proto::printable_text(c.hostname)},
                         {"address", alloc::ip_to_string(c.address)},
                         {"first_seen", c.first_seen},
                         {"last_seen", c.last_seen},
                         {"last_seen_text", format_time(c.last_seen)},
                         {"attempts", c.attempts}});
  out["conflicts"] = std::move(conflicts);
  json events = json::array();
  for (const auto& e : in.recent_events)
    events.push_back({{"time", e.received_at},
                      {"time_text", format_time(e.received_at)},
                      {"path", to_string(e.path)},
                      {"source", alloc::to_string(e.event.source)},
                      {"action", alloc::to_string(e.event.action)},
                      {"address", alloc::ip_to_string(e.event.address)},
                      {"client", event_client(e.event)},
                      {"hostname", proto::printable_text(e.event.hostname)},
                      {"expires", expiry_json(e.event.expires)}});
  out["recent_events"] = std::move(events);
  return out;
}

std::string page(std::string_view title, std::string_view body, int poll_seconds = 0) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                    "<title>" + html_escape(title) + "</title><link rel=\"stylesheet\" href=\"/style.css\">"
                    "<script src=\"/agent.js\" defer></script></head>\n<body data-poll=\"" +
                    std::to_string(poll_seconds) + "\">\n";
  out += body;
  out += "</body></html>\n";
  return out;
}

std::string login_page(bool failed) {
  std::string body = "<main><h1>Tsunagu LAN agent</h1>\n";
  if (failed) body += "<p class=\"down\" role=\"alert\">That token is not the admin token.</p>\n";
  body += "<form method=\"post\" action=\"/login\"><label for=\"token\">Admin token ([web] token_file)</label>"
          "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required>"
          "<button type=\"submit\">Log in</button></form></main>\n";
  return page("Tsunagu LAN agent: log in", body);
}

std::string cell(std::string_view text) { return "<td>" + html_escape(proto::printable_text(text)) + "</td>"; }

std::string status_page(const AgentStatusInput& in) {
  const AgentMetricsInput& m = in.metrics;
  std::string b = "<main><h1>Tsunagu LAN agent " + html_escape(in.agent_name) + "</h1>\n";
  b += "<dl class=\"summary\"><dt>Node link</dt><dd>";
  if (!m.node_configured) b += "<span id=\"node-link\">not configured (LAN table only)</span>";
  else if (m.node_linked) b += "<span id=\"node-link\" class=\"up\">up</span>";
  else b += "<span id=\"node-link\" class=\"down\">down</span>";
  b += " (<span id=\"node-connects\">" + std::to_string(m.node_connects) + "</span> connection(s) made)</dd>";
  b += "<dt>Spool</dt><dd id=\"spool-depth\">" + std::to_string(m.spool.files) + " file(s), " +
       std::to_string(m.spool.bytes) + " byte(s) waiting</dd>";
  b += "<dt>Time</dt><dd id=\"status-time\">" + html_escape(format_time(in.now)) + "</dd></dl>\n";
  if (!in.table_error.empty())
    b += "<p class=\"down\" role=\"alert\">The allocation table could not be read: " + html_escape(in.table_error) +
         "</p>\n";

  b += "<h2 id=\"allocations\">Allocation table</h2>\n<table aria-labelledby=\"allocations\"><thead><tr>"
       "<th scope=\"col\">Extension</th><th scope=\"col\">Client</th><th scope=\"col\">Address</th>"
       "<th scope=\"col\">Hostname</th><th scope=\"col\">Expires in</th><th scope=\"col\">Source</th>"
       "<th scope=\"col\">Conflicts</th></tr></thead><tbody id=\"allocation-rows\">\n";
  for (const auto& row : allocation_rows(in)) {
    b += "<tr>" + cell(row.extension.empty() ? "-" : row.extension) + cell(row.client) +
         cell(row.leased ? row.address : "-") + cell(row.hostname) + cell(expiry_text(row, in.now)) +
         cell(row.leased ? row.source : "-");
    b += row.conflicts ? "<td class=\"conflict\">" + std::to_string(row.conflicts) + "</td>" : "<td>0</td>";
    b += "</tr>\n";
  }
  b += "</tbody></table>\n";

  b += "<h2 id=\"conflicts\">Conflicts</h2>\n<p>Clients whose hostname claimed an extension bound to another "
       "client; bind a replaced terminal with <code>tsunagu-lan-agent bind EXT CLIENT</code>.</p>\n"
       "<table aria-labelledby=\"conflicts\"><thead><tr><th scope=\"col\">Extension</th>"
       "<th scope=\"col\">Claimed by</th><th scope=\"col\">Hostname</th><th scope=\"col\">Address</th>"
       "<th scope=\"col\">Last seen</th><th scope=\"col\">Attempts</th></tr></thead><tbody id=\"conflict-rows\">\n";
  for (const auto& c : in.conflicts)
    b += "<tr>" + cell(c.extension) + cell(client_of(c.claimant)) + cell(c.hostname) +
         cell(alloc::ip_to_string(c.address)) + cell(format_time(c.last_seen)) + cell(std::to_string(c.attempts)) +
         "</tr>\n";
  b += "</tbody></table>\n";

  b += "<h2 id=\"events\">Recent hook events</h2>\n"
       "<table aria-labelledby=\"events\"><thead><tr><th scope=\"col\">Received</th><th scope=\"col\">Via</th>"
       "<th scope=\"col\">Server</th><th scope=\"col\">Action</th><th scope=\"col\">Address</th>"
       "<th scope=\"col\">Client</th><th scope=\"col\">Hostname</th></tr></thead><tbody id=\"event-rows\">\n";
  for (const auto& e : in.recent_events)
    b += "<tr>" + cell(format_time(e.received_at)) + cell(to_string(e.path)) + cell(alloc::to_string(e.event.source)) +
         cell(alloc::to_string(e.event.action)) + cell(alloc::ip_to_string(e.event.address)) +
         cell(event_client(e.event)) + cell(e.event.hostname) + "</tr>\n";
  b += "</tbody></table>\n";
  b += "<form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form></main>\n";
  return page("Tsunagu LAN agent " + in.agent_name, b, 1);
}

web::HttpResponse method_not_allowed(std::string_view allow) {
  auto response = json_error(405, "method_not_allowed", "Method Not Allowed");
  add_header(response, "allow", std::string(allow));
  return response;
}

web::HttpResponse unauthenticated(bool html, bool failed_login = false) {
  web::HttpResponse response = html ? respond(401, "text/html; charset=utf-8", login_page(failed_login))
                                    : json_error(401, "unauthenticated",
                                                 "the admin token is required: Authorization: Bearer <token>");
  add_header(response, "www-authenticate", "Bearer realm=\"tsunagu-agent\"");
  return response;
}

web::HttpResponse logged_in_redirect(std::string_view token) {
  web::HttpResponse response = respond(303, "text/plain; charset=utf-8", "logged in\n");
  add_header(response, "location", "/");
  add_header(response, "set-cookie", token_cookie(token, false));
  return response;
}

}  // namespace


std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

web::HttpResponse agent_web_handle(const web::HttpRequest& request, const AgentStatusInput& input,
                                   std::string_view admin_token) {
  return agent_web_handle(request, [&input] { return input; }, admin_token);
}

web::HttpResponse agent_web_handle(const web::HttpRequest& request, const std::function<AgentStatusInput()>& gather,
                                   std::string_view admin_token) {
  const std::string& path = request.path;
  bool get = request.method == "GET" || request.method == "HEAD";
  if (path == "/style.css" || path == "/agent.js") {
    if (!get) return method_not_allowed("GET, HEAD");
    auto response = path == "/style.css" ? respond(200, "text/css; charset=utf-8", std::string(kStyle))
                                         : respond(200, "text/javascript; charset=utf-8", std::string(kScript));
    return response;
  }
  if (path == "/login") {
    if (request.method != "POST") return method_not_allowed("POST");
    if (request.body.size() > kMaxLoginBodyBytes) return json_error(413, "payload_too_large", "Payload Too Large");
    auto token = form_field(request.body, "token");
    if (!token || !tokens_equal(*token, admin_token)) return unauthenticated(true, true);
    return logged_in_redirect(admin_token);
  }
  if (path == "/logout") {
    if (request.method != "POST") return method_not_allowed("POST");
    web::HttpResponse response = respond(303, "text/plain; charset=utf-8", "logged out\n");
    add_header(response, "location", "/");
    add_header(response, "set-cookie", token_cookie("", true));
    return response;
  }
  if (path == "/") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (const std::string* token = query(request, "token")) {
      if (!tokens_equal(*token, admin_token)) return unauthenticated(true, true);
      return logged_in_redirect(admin_token);  // the token leaves the address bar
    }
    if (!authorized(request, admin_token)) return unauthenticated(true);
    return respond(200, "text/html; charset=utf-8", status_page(gather()));
  }
  if (path == "/api/status") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (!authorized(request, admin_token)) return unauthenticated(false);
    // DHCP hostnames are whatever a client sent: invalid UTF-8 is replaced, not thrown on.
    return respond(200, "application/json",
                   status_json(gather()).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (!authorized(request, admin_token)) return unauthenticated(false);
    return respond(200, std::string(web::kMetricsContentType), agent_metrics_text(gather().metrics));
  }
  return json_error(404, "not_found", "Not Found");
}

}  // namespace tsunagu::lanagent
