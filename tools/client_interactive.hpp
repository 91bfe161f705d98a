// pomelo-client --interactive (tools/client_interactive.cpp): one client on the game client
// library, stdin lines out as payloads, replies and status lines on stdout.
#pragma once

#include <string>
#include <vector>

namespace pomelo::tools {

// `args`: the tool's arguments (after "--", if any), "--interactive" among them. Returns the
// exit status; bad arguments and failures throw cli::Error (printed by cli::run_main).
int run_interactive(const std::vector<std::string>& args);

}  // namespace pomelo::tools
