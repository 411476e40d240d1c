#pragma once

namespace lockstep::cli {

// `lockstep demo`: an LMTP server that leaks a stray "350 lockers" on its second message,
// the proxy in front of it, and a client that counts replies, all in this process.
// Prints the live ladder and findings; returns 0 when the demo ran as intended.
int run_demo(bool color);

}  // namespace lockstep::cli
