// What reaches the agent's hook socket, and what a DHCP server hands the hook
// program: the events request body, and argv/environment split from the input
// (NUL-separated: arguments, then an empty field, then NAME=value entries).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lan-agent/hook_invocation.hpp"
#include "lan-agent/hook_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu;
  if (size > 16384) return 0;
  (void)lanagent::decode_events_request(ByteView(reinterpret_cast<const std::byte*>(data), size));

  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args, env;
  bool in_env = false;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '\0') continue;
    std::string_view field = text.substr(start, i - start);
    start = i + 1;
    if (field.empty() && !in_env) {
      in_env = true;
      continue;
    }
    (in_env ? env : args).push_back(field);
    if (args.size() + env.size() > 64) break;
  }
  auto options = lanagent::parse_hook_options(args);
  if (!options.error.empty() || options.first_server_arg > args.size()) return 0;
  std::vector<std::string_view> server_args(args.begin() + static_cast<std::ptrdiff_t>(options.first_server_arg), args.end());
  auto server = lanagent::detect_hook_server(server_args, env);
  alloc::HookCall call;
  call.args = server_args;
  call.env = env;
  call.now = 1'795'000'000;
  (void)lanagent::events_of(server, call);
  return 0;
}
