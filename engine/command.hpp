#pragma once
// Client commands: verb, path and ESMTP parameters (RFC 5321 §4.1, RFC 1870, 3030,
// 3461, 4954, 6152, 6531).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "engine/types.hpp"

namespace lockstep {

enum class Verb : std::uint8_t {
  unknown, lhlo, helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help,
  starttls, auth, turn, etrn
};
std::string_view to_string(Verb v);

// The ESMTP parameters lockstep knows, recognised once when the command is parsed.
enum class ParamKey : std::uint8_t { other, size, body, smtputf8, ret, envid, notify, orcpt, auth };

struct Param {
  ParamKey id = ParamKey::other;
  std::string_view key;    // as sent (a part of the command's line)
  std::string_view value;  // empty when there is no "="
  bool has_value = false;
};

// What is wrong with a command line's syntax, for the client-side findings.
struct CommandSyntax {
  bool space_around_colon = false;  // "MAIL FROM: <a>" (SMTP-3.3-NO-SPACE-AROUND-COLON)
  bool bad_path = false;            // no <...> path where one is required
  bool args_not_allowed = false;    // RSET/DATA/QUIT with arguments
  bool non_ascii = false;           // octets >= 0x80 on the line
  bool bad_bdat = false;            // BDAT without a valid size
};

// What parse_command() makes of a line. The text parts are views into `line`; Command
// (below) keeps them pointing there when it is copied or moved.
struct CommandFields {
  std::uint32_t index = 0;      // 0-based position among the session's commands
  Verb verb = Verb::unknown;
  std::string line;             // the line without CRLF (capped at Command::kMaxLine)
  std::string_view verb_text;   // capped at 32 octets
  std::string_view arg;         // everything after the verb
  std::string_view path;        // MAIL/RCPT path without <>, VRFY/EXPN argument
  boost::container::small_vector<Param, 3> params;
  std::uint64_t bdat_size = 0;  // BDAT chunk size
  bool bdat_last = false;
  CommandSyntax syntax;
  std::uint64_t offset = 0, length = 0;  // in the client stream
  Time time = 0;
  bool bare_lf = false;         // the line ended in LF alone
  bool bare_cr = false;
  bool truncated = false;
};

struct Command : CommandFields {
  static constexpr std::size_t kMaxLine = 2048;

  Command() = default;
  Command(const Command& o) : CommandFields(o) { rebase(o.line.data()); }
  Command(Command&& o) noexcept : Command(std::move(o), o.line.data()) {}
  Command& operator=(const Command& o);
  Command& operator=(Command&& o) noexcept;
  ~Command() = default;

  // Returns the first parameter with this key, or nullptr.
  const Param* param(ParamKey id) const;
  std::size_t count_param(ParamKey id) const;
  // "RCPT TO:<bob@lab.test>", shortened to `max` characters.
  std::string label(std::size_t max = 60) const;

 private:
  Command(Command&& o, const char* old) noexcept : CommandFields(static_cast<CommandFields&&>(o)) { rebase(old); }
  // Points the views at `line` again after a copy or move from a line at `old`.
  void rebase(const char* old);
};

// Parses one command line (without its terminator). Never fails: oddities are
// recorded in `syntax` and an unrecognised verb gives Verb::unknown.
Command parse_command(std::string_view line);
// The parameter a key names (any case); ParamKey::other for one lockstep does not know.
ParamKey param_key(std::string_view key);

bool iequals(std::string_view a, std::string_view b);

}  // namespace lockstep
