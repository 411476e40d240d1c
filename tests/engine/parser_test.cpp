#include <catch2/catch.hpp>

#include "engine/command.hpp"
#include "engine/reply.hpp"

using namespace lockstep;

TEST_CASE("a reply line gives its code, separator and text", "[parser][reply]") {
  const auto r = parse_reply_line("250-PIPELINING");
  CHECK(r.code == 250);
  CHECK(r.sep == '-');
  CHECK(r.text == "PIPELINING");
}
