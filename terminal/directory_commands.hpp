// The `tsunagu directory`, `tsunagu profile` and `tsunagu voicemail` commands
// (docs/directory.md, docs/voicemail.md), and the voicemail hooks of `call`
// and `login`. main.cpp adds them to its CLI11 app and runs whichever parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "terminal/node_client.hpp"

namespace tsunagu::terminal {

struct DirectoryCommands;

// Adds the subcommands; the returned object holds their parsed values.
std::shared_ptr<DirectoryCommands> add_directory_commands(CLI::App& app);
// Runs the subcommand that was parsed and returns its exit code; nullopt when
// none of these was given.
std::optional<int> run_directory_commands(DirectoryCommands& commands);

// After `tsunagu call ID --voicemail FILE` could not reach ID: leaves FILE in
// ID's mailbox on a fresh query link. Returns the exit code.
int leave_voicemail(NodeClientOptions options, const std::string& callee, const std::string& file);
// Whether a `tsunagu call` exit code means the call could not complete
// (offline, busy, declined, no answer), so voicemail may be left.
bool call_missed(int exit_code);

// After a missed call without --voicemail, when stdin and stdout are a
// terminal: asks for a file to leave as voicemail (an empty answer leaves
// none). Returns the upload's exit code, or nullopt when nothing was left.
std::optional<int> offer_voicemail(const NodeClientOptions& options, const std::string& callee);
// For `tsunagu login --mailbox DIR`: on each login, fetch what waits into DIR
// and acknowledge it; prints one line per message.
void deliver_on_login(NodeClient& client, const std::string& directory);
// Checks DIR exists and is writable (creates it when missing); error text or nullopt.
std::optional<std::string> prepare_mailbox(const std::string& directory);

}  // namespace tsunagu::terminal
