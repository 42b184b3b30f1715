// The agent's status page handler with what a LAN client controls: the
// method, path, Authorization and Cookie headers, the query's token and the
// body (newline-separated fields of the input), over a table whose hostnames
// are the input too. Checks what must hold for any request: the CSP header on
// every answer, and no page or data without the exact token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/field_normalisation.hpp"
#include "lan-agent/agent_web.hpp"

namespace {

constexpr std::string_view kToken = "fuzz-token-0123456789";

bool has_csp(const tsunagu::web::HttpResponse& response) {
  for (const auto& [name, value] : response.headers.entries)
    if (name == "content-security-policy" && value.starts_with("default-src 'self'")) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu;
  if (size > 16384) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  while (fields.size() < 6) {
    size_t end = text.find('\n');
    fields.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  fields.resize(6);
  web::HttpRequest request;
  request.method = fields[0].empty() ? "GET" : fields[0];
  request.path = request.target = fields[1].empty() ? "/" : fields[1];
  if (!fields[2].empty()) request.headers.entries.emplace_back("authorization", fields[2]);
  if (!fields[3].empty()) request.headers.entries.emplace_back("cookie", fields[3]);
  if (!fields[4].empty()) request.query.emplace_back("token", fields[4]);
  request.body = std::string(text);

  lanagent::AgentStatusInput input;
  input.now = 1'800'000'000;
  input.agent_name = fields[5];
  alloc::LeaseRecord lease;
  lease.address = *alloc::parse_ip_address("192.168.1.9");
  lease.mac = "02:00:00:00:00:09";
  lease.hostname = fields[5];
  lease.live_until = lease.expires = input.now + 60;
  input.leases.push_back(lease);

  auto response = lanagent::agent_web_handle(request, input, kToken);
  if (!has_csp(response)) std::abort();
  bool presented = fields[2].find(kToken) != std::string::npos || fields[3].find(kToken) != std::string::npos ||
                   fields[4] == kToken || request.body.find(kToken) != std::string::npos;
  if (response.status == 200 && request.path != "/style.css" && request.path != "/agent.js" && !presented)
    std::abort();
  if (response.status == 200 && request.path == "/" && response.body.find("<script>") != std::string::npos)
    std::abort();
  return 0;
}
