#pragma once
// The service extensions a server advertised in its LHLO reply (RFC 5321 §4.1.1.1).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/reply.hpp"

namespace lockstep {

// The keywords the checks look at, told apart once when the reply is read.
enum class Kw : std::uint8_t {
  other, pipelining, enhancedstatuscodes, chunking, binarymime, eightbitmime, smtputf8, dsn, starttls, auth, size,
  expn, etrn, help
};

struct Keyword {
  std::string name;                 // as sent
  std::vector<std::string> params;
  bool bad_syntax = false;          // not ehlo-keyword *(SP ehlo-param)
  Kw kw = Kw::other;                // which known keyword `name` is (case-insensitive)
};

struct Capabilities {
  bool known = false;        // false until an LHLO reply was seen (or mid-session)
  bool pipelining = false, enhanced_codes = false, chunking = false, binarymime = false,
       eightbit = false, smtputf8 = false, dsn = false, starttls = false, auth = false,
       size = false;
  std::optional<std::uint64_t> size_limit;  // SIZE n, n > 0
  bool greeting_domain_bad = false;          // first line lacks a domain

  // The keyword lines in order (none until an LHLO reply was read). Shared: both views
  // of a session read the same reply's list, and copy only the pointer.
  const std::vector<Keyword>& keywords() const;
  // Whether `keyword` was advertised (case-insensitive).
  bool has(std::string_view keyword) const;
  bool has(Kw k) const;

  // Everything allowed: used when a session starts mid-way and the LHLO is not seen.
  static Capabilities assume_all();

 private:
  friend Capabilities parse_capabilities(const Reply& lhlo_reply);
  std::shared_ptr<const std::vector<Keyword>> list_;
};

// Reads the capability list of a 250 reply to LHLO.
Capabilities parse_capabilities(const Reply& lhlo_reply);

}  // namespace lockstep
