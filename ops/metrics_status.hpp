// `tsunagu-rendezvous status` and `tsunagu-lan-agent status`: the live figures
// of a running daemon, read from its /metrics over HTTPS (docs/operator.md,
// "status").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/expected.hpp"

namespace tsunagu::ops {

// GET /metrics from HOST:PORT over TLS, the server's certificate checked
// against `ca_file` (chain only: the daemon's names may not include the
// loopback address), with `Authorization: Bearer TOKEN` when a token is given.
// The response's body; an error says what failed. The whole exchange is
// bounded by `timeout_ms` and the body by 4 MiB.
Expected<std::string, std::string> fetch_metrics(const std::string& host, uint16_t port, const std::string& ca_file,
                                                 const std::string& bearer_token, int timeout_ms);

// One line per metric family of a Prometheus text exposition, its samples'
// labels and values side by side ("tsunagu_node_links: kind=agent 1, kind=terminal 4");
// histogram buckets are left out (their _sum and _count stay). Pure.
std::string summarise_metrics(std::string_view exposition);

}  // namespace tsunagu::ops
