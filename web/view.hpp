#pragma once
// What the web view shows of a session, as JSON: the same document for the live page
// (pushed over the WebSocket) and for `lockstep check --html` (embedded in one file).
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "engine/checker.hpp"

namespace lockstep::web {

// A session in full: its ladder (commands, replies with both pairings, content, fault
// firings), findings, narrative and counts. `redact` masks AUTH exchanges (the initial
// response of AUTH, the text of 334 challenges), as the recorder does.
boost::json::object session_json(const SessionResult& r, bool redact);
// A finding as every JSON output gives it (check --format json, the web view).
boost::json::object finding_json(const Finding& f);
// A line of the session list.
boost::json::object summary_json(const SessionResult& r);

// The page: index.html with its script and style, or the one self-contained file of
// `check --html` with `sessions` embedded and no WebSocket.
std::string static_page(const boost::json::array& sessions, std::string_view title);

// The embedded assets ("index.html", "app.js", "app.css"): content and type; empty
// content when there is no such asset.
struct Asset {
  std::string_view content, type;
};
Asset asset(std::string_view name);

}  // namespace lockstep::web
