// `tsunagu card load|show` and `tsunagu call ID --card` (docs/cards.md,
// "The terminal"): the terminal keeps the cards it loaded in its card
// directory, finds its area's access points on the card, and places a call
// through the cheapest that answers, paying from the card. main.cpp adds
// these to its CLI11 app and runs whichever parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "terminal/call_runner.hpp"
#include "terminal/cli_common.hpp"

namespace tsunagu::terminal {

struct CardCommands;
std::shared_ptr<CardCommands> add_card_commands(CLI::App& app);
// The exit code of the card subcommand that was parsed; nullopt when none was.
std::optional<int> run_card_commands(CardCommands& commands);

// `call ID --card [SERIAL] [--card-password-file F] [--area A]`.
struct CardCallArgs;
std::shared_ptr<CardCallArgs> add_card_call_options(CLI::App* call);
bool card_call_requested(const CardCallArgs& args);
// Before the node options are checked: loads the card, reads its password,
// ranks the access points of the terminal's area (the card decides which
// node is called: --node and TSUNAGU_NODE are not used) and gives the node
// options the cheapest; with no area given or configured, the card's first
// node, and run_card_call asks the card's nodes for the area (card_area).
// false after printing why (exit_code set).
bool prepare_card_call(CardCallArgs& args, NodeArgs& node, const std::string& callee, int& exit_code);
// The call through each access point of the area in cost order until one
// is reached (a node that cannot be connected to is skipped); the exit code
// of the call that reached a node, or of the last attempt.
int run_card_call(CallOptions options, CardCallArgs& args);

}  // namespace tsunagu::terminal
