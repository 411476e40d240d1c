#pragma once
// Writes the JSON Lines recording: one file for every connection, or one file per
// connection when the path is a directory. Each event is one write(2), so a crash or a
// SIGKILL loses at most the event being written.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace lockstep::proxy {

class Recorder {
 public:
  // Opens the recording; null with `error` set when the path cannot be written.
  static std::unique_ptr<Recorder> open(const std::string& path, std::string& error);
  ~Recorder();

  void write(std::string_view conn, std::string_view line);
  // The connection is over: its file (per-connection mode) is closed.
  void end(std::string_view conn);
  // Reopens the files (after log rotation, SIGHUP).
  void reopen();
  // The first write error, if any (the relay goes on regardless).
  std::string error() const;

 private:
  Recorder() = default;
  int fd_for(std::string_view conn);
  std::string path_;
  bool per_connection_ = false;
  int fd_ = -1;
  std::map<std::string, int, std::less<>> fds_;
  mutable std::mutex mu_;
  std::string error_;
};

}  // namespace lockstep::proxy
