// The call_path indication: after a call connected, the terminal tells the
// node which ICE path was selected, for the call's end audit line (`path=`,
// docs/operator.md "Audit log"). Fire and forget: the node sends no answer.
#pragma once

#include "terminal/call_core.hpp"
#include "terminal/node_client.hpp"

namespace tsunagu::terminal {

// The indication itself: a LAN terminal sends it on its ring's link, and its agent relays it.
Bytes path_report_message(const call::ReportPath& report);
void send_path_report(NodeClient& node, const call::ReportPath& report);

}  // namespace tsunagu::terminal
