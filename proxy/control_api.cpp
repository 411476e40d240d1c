// The control API itself, without sockets (no coroutines: the fuzz preset instruments it
// for coverage, which clang 14 cannot do for coroutine code).
#include <boost/json.hpp>
#include <fmt/format.h>

#include "proxy/control.hpp"

namespace lockstep::proxy {

namespace json = boost::json;

namespace {
json::object fault_json(const FaultSpec& f) {
  return json::object{{"name", f.name},
                      {"spec", f.spec},
                      {"action", to_string(f.action)},
                      {"stream", f.dir == Dir::server ? "downstream" : "upstream"},
                      {"description", describe(f)}};
}

}  // namespace

json::object session_info_json(const SessionInfo& s) {
  json::array fs, rules;
  for (const auto& f : s.faults) fs.push_back(json::string(f));
  for (const auto& r : s.rules) rules.push_back(json::string(r));
  json::object o{{"conn", s.conn},
                 {"client", s.client},
                 {"upstream", s.upstream},
                 {"started_us", s.started_us},
                 {"seed", s.seed},
                 {"faults", std::move(fs)},
                 {"client_octets", s.client_octets},
                 {"server_octets", s.server_octets},
                 {"state", s.state},
                 {"commands", s.commands},
                 {"replies", s.replies},
                 {"errors", s.errors},
                 {"warnings", s.warnings},
                 {"notes", s.notes},
                 {"rules", std::move(rules)},
                 {"interceptable", s.interceptable},
                 {"hold", s.hold}};
  if (s.hold == "held") {
    o["held_label"] = s.held_label;
    o["held_reply"] = s.held_reply;
  }
  return o;
}

namespace {
ControlResponse reply(unsigned status, const json::value& v) { return {status, json::serialize(v) + "\n"}; }
}  // namespace

ControlResponse control_error(unsigned status, std::string msg) {
  // Messages may quote what the request said: only printable ASCII goes out, so the
  // answer is valid JSON (UTF-8) whatever bytes came in.
  for (char& c : msg)
    if (c < 0x20 || c >= 0x7f) c = '?';
  return reply(status, json::object{{"error", msg}});
}

bool same_token(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  return diff == 0;
}

ControlResponse handle_control(Proxy& proxy, const ControlRequest& req, const std::string& token) {
  if (!token.empty() && !same_token(req.authorization, "Bearer " + token))
    return control_error(401, "a bearer token is required: Authorization: Bearer TOKEN");
  std::string path = req.target.substr(0, req.target.find('?'));
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/" && req.method == "GET") {
    return reply(200, json::object{{"endpoints", json::array{"GET /faults", "POST /faults {\"name\": N, \"spec\": S}",
                                                            "GET /faults/NAME", "DELETE /faults/NAME", "GET /sessions", "GET /sessions/ID",
                                                            "POST /sessions/ID/hold", "POST /sessions/ID/release {\"action\": \"pass|drop|edit\", \"text\": T}",
                                                            "GET /presets"}}});
  }
  if (path == "/faults") {
    if (req.method == "GET") {
      json::array a;
      for (const auto& f : proxy.faults()) a.push_back(fault_json(f));
      return reply(200, json::object{{"faults", std::move(a)}, {"seed", proxy.seed()}});
    }
    if (req.method == "POST") {
      boost::system::error_code ec;
      json::value v = json::parse(req.body, ec);
      if (ec || !v.is_object()) return control_error(400, "the body must be a JSON object: {\"name\": ..., \"spec\": ...}");
      const auto& o = v.as_object();
      const auto* spec = o.if_contains("spec");
      if (!spec || !spec->is_string()) return control_error(400, "\"spec\" (a string such as \"inject@eod#1,text=350 lockers\") is required");
      std::string text(spec->as_string());
      if (const auto* name = o.if_contains("name")) {
        if (!name->is_string() || name->as_string().empty()) return control_error(400, "\"name\" must be a non-empty string");
        text = std::string(name->as_string()) + "=" + text;
      }
      // toxiproxy's "toxicity": the probability a connection gets the fault.
      if (const auto* tox = o.if_contains("toxicity")) {
        if (!tox->is_number()) return control_error(400, "\"toxicity\" must be a number from 0 to 1");
        text += fmt::format(",p={}", tox->to_number<double>());
      }
      std::string err;
      auto f = parse_fault(text, err);
      if (!f) return control_error(400, err);
      if (!proxy.add_fault(*f, err)) return control_error(409, err);
      return reply(201, fault_json(*f));
    }
    return control_error(405, "GET or POST");
  }
  if (path.rfind("/faults/", 0) == 0) {
    const std::string name = path.substr(8);
    if (req.method == "GET") {
      for (const auto& f : proxy.faults())
        if (f.name == name) return reply(200, fault_json(f));
      return control_error(404, fmt::format("no fault named '{}'", name));
    }
    if (req.method == "DELETE") {
      if (!proxy.remove_fault(name)) return control_error(404, fmt::format("no fault named '{}'", name));
      return {204, ""};
    }
    return control_error(405, "GET or DELETE");
  }
  if (path == "/sessions" && req.method == "GET") {
    json::array a;
    for (const auto& s : proxy.sessions()) a.push_back(session_info_json(s));
    return reply(200, json::object{{"sessions", std::move(a)}});
  }
  if (path.rfind("/sessions/", 0) == 0) {
    // /sessions/ID, /sessions/ID/hold, /sessions/ID/release
    std::string rest = path.substr(10);
    const auto slash = rest.find('/');
    const std::string conn = rest.substr(0, slash);
    const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (action.empty() && req.method == "GET") {
      if (auto s = proxy.session(conn)) return reply(200, session_info_json(*s));
      return control_error(404, fmt::format("no open connection '{}'", conn.substr(0, 100)));
    }
    if (action == "hold" && req.method == "POST") {
      std::string err;
      if (!proxy.hold(conn, err)) return control_error(err.rfind("no open", 0) == 0 ? 404 : 409, err);
      return reply(202, json::object{{"conn", conn}, {"hold", "armed"}});
    }
    if (action == "release" && req.method == "POST") {
      FaultStage::Release how = FaultStage::Release::pass;
      std::string text;
      if (!req.body.empty()) {
        boost::system::error_code ec;
        json::value v = json::parse(req.body, ec);
        if (ec || !v.is_object()) return control_error(400, "the body must be a JSON object: {\"action\": \"pass|drop|edit\", \"text\": ...}");
        const auto& o = v.as_object();
        if (const auto* a = o.if_contains("action")) {
          if (!a->is_string()) return control_error(400, "\"action\" must be \"pass\", \"drop\" or \"edit\"");
          const std::string_view name = a->as_string();
          if (name == "drop") how = FaultStage::Release::drop;
          else if (name == "edit") how = FaultStage::Release::edit;
          else if (name != "pass") return control_error(400, "\"action\" must be \"pass\", \"drop\" or \"edit\"");
        }
        if (how == FaultStage::Release::edit) {
          const auto* t = o.if_contains("text");
          if (!t || !t->is_string() || t->as_string().empty())
            return control_error(400, "\"edit\" needs \"text\": the reply to send instead, one line per line");
          if (t->as_string().size() > 64 * 1024) return control_error(400, "\"text\" is longer than 64 KiB");
          text = std::string(t->as_string());
        }
      }
      std::string err;
      if (!proxy.release(conn, how, std::move(text), err)) return control_error(err.rfind("no open", 0) == 0 ? 404 : 409, err);
      return reply(200, json::object{{"conn", conn}, {"released", how == FaultStage::Release::pass ? "pass" : how == FaultStage::Release::drop ? "drop" : "edit"}});
    }
    return control_error(405, "GET /sessions/ID, POST /sessions/ID/hold, POST /sessions/ID/release");
  }
  if (path == "/presets" && req.method == "GET") {
    json::array a;
    for (const auto& p : fault_presets())
      a.push_back(json::object{{"name", p.name}, {"spec", p.spec}, {"incident", p.incident}});
    return reply(200, json::object{{"presets", std::move(a)}});
  }
  return control_error(404, fmt::format("no endpoint {} {}", req.method.substr(0, 100), path.substr(0, 200)));
}

}  // namespace lockstep::proxy
