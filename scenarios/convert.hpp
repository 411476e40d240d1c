#pragma once
// Recordings to scenarios: each connection of a source (lockstep recording, socat dump,
// Postfix log) becomes a client-role scenario that sends the recorded client bytes and
// expects the recorded reply codes, so `lockstep replay` can re-drive it against a live
// server and `lockstep record-to-scenario` can write it out for editing.
#include <string>
#include <vector>

#include "engine/source.hpp"

namespace lockstep::scenarios {

struct ConvertedSession {
  std::string conn;
  std::string yaml;      // the scenario file's text
  std::size_t replies = 0;
  bool mid_session = false;  // the source joined the connection after its start
};

// Reads `src` to the end. `name` names the source in ids and titles; `only_conn`, when
// not empty, keeps that connection alone.
std::vector<ConvertedSession> recording_to_scenarios(Source& src, const std::string& name, const std::string& only_conn);

}  // namespace lockstep::scenarios
