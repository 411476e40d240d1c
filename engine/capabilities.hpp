#pragma once
// The service extensions a server advertised in its LHLO reply (RFC 5321 §4.1.1.1).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/reply.hpp"

namespace lockstep {

struct Keyword {
  std::string name;                 // as sent
  std::vector<std::string> params;
  bool bad_syntax = false;          // not ehlo-keyword *(SP ehlo-param)
};

struct Capabilities {
  bool known = false;        // false until an LHLO reply was seen (or mid-session)
  bool pipelining = false, enhanced_codes = false, chunking = false, binarymime = false,
       eightbit = false, smtputf8 = false, dsn = false, starttls = false, auth = false,
       size = false;
  std::optional<std::uint64_t> size_limit;  // SIZE n, n > 0
  std::vector<Keyword> keywords;
  bool greeting_domain_bad = false;          // first line lacks a domain

  // Whether `keyword` was advertised (case-insensitive).
  bool has(std::string_view keyword) const;

  // Everything allowed: used when a session starts mid-way and the LHLO is not seen.
  static Capabilities assume_all();
};

// Reads the capability list of a 250 reply to LHLO.
Capabilities parse_capabilities(const Reply& lhlo_reply);

}  // namespace lockstep
