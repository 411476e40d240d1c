#pragma once
// Switches read from the environment.
#include <cstdlib>

namespace lockstep {

// True when `name` is set to anything but empty or "0" (LOCKSTEP_MMAP=1 ...).
inline bool env_switch(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && *e != '0';
}

}  // namespace lockstep
