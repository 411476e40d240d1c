// The proxy's control API request handler (handle_control), without sockets, on a proxy
// that is configured but not started. Input: METHOD \n TARGET \n AUTHORIZATION \n BODY.
// Invariants: every request gets a status in 200..599 and, unless 204, a JSON body; a
// request without the right token never changes the faults; faults added are listed.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/json.hpp>

#include "proxy/address.hpp"
#include "proxy/control.hpp"

namespace {
lockstep::proxy::Proxy& proxy() {
  static lockstep::proxy::Proxy* p = [] {
    lockstep::proxy::ProxyOptions o;
    std::string error;
    o.listen = *lockstep::proxy::parse_address("127.0.0.1:0", error);
    o.upstream = *lockstep::proxy::parse_address("127.0.0.1:9", error);
    return new lockstep::proxy::Proxy(o, lockstep::proxy::ProxyHooks{});
  }();
  return *p;
}

std::string take_line(std::string_view& in) {
  const auto lf = in.find('\n');
  std::string out(in.substr(0, lf));
  in.remove_prefix(lf == std::string_view::npos ? in.size() : lf + 1);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  lockstep::proxy::ControlRequest req;
  req.method = take_line(in);
  req.target = take_line(in);
  req.authorization = take_line(in);
  req.body = std::string(in);
  auto& p = proxy();
  // Start from no faults, so the runs do not depend on each other.
  for (const auto& f : p.faults()) p.remove_fault(f.name);

  const auto before = p.faults().size();
  const auto denied = lockstep::proxy::handle_control(p, req, "s3cret");
  if (denied.status < 200 || denied.status > 599) std::abort();
  if (req.authorization != "Bearer s3cret" && p.faults().size() != before) std::abort();  // no token, no change

  const auto r = lockstep::proxy::handle_control(p, req, "");
  if (r.status < 200 || r.status > 599) std::abort();
  if (r.status != 204) {
    boost::system::error_code ec;
    (void)boost::json::parse(r.body, ec);
    if (ec) std::abort();  // the API always answers JSON
  }
  for (const auto& f : p.faults())
    if (f.name.empty()) std::abort();
  return 0;
}
