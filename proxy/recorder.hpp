#pragma once
// Writes the JSON Lines recording: one file for every connection, or one file per
// connection when the path is a directory. Events are gathered in memory and written in
// blocks: when 64 KiB are waiting, when a connection ends, at most `delay` after an
// event (flush_on), on reopen and at destruction. A crash or a SIGKILL loses at most
// the events of that last moment.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/types.hpp"

namespace lockstep::proxy {

class Recorder {
 public:
  // Opens the recording; null with `error` set when the path cannot be written.
  static std::unique_ptr<Recorder> open(const std::string& path, std::string& error);
  ~Recorder();

  // Buffered events are written at most `delay` after they arrived, by a timer on `ex`
  // (without it, only by size, end() and flush()).
  void flush_on(boost::asio::any_io_executor ex, std::chrono::milliseconds delay);
  void write(std::string_view conn, std::string_view line);
  // A data event, formatted straight into the buffer (no line of its own).
  void data(std::string_view conn, Time t, Dir dir, std::string_view bytes);
  // The connection is over: what it recorded is written, and its file (per-connection
  // mode) is closed.
  void end(std::string_view conn);
  // Writes what is buffered.
  void flush();
  // Reopens the files (after log rotation, SIGHUP).
  void reopen();
  // The first write error, if any (the relay goes on regardless).
  std::string error() const;

 private:
  Recorder() = default;
  // One file and the events waiting for it.
  struct Out {
    int fd = -1;
    std::string buf;      // only grows (zero-filled once); `used` octets hold events
    std::size_t used = 0;
    // Disk space reserved ahead of the writes (single-file mode): [0, reserved) of the
    // file has blocks, `size` is the file's length as of the last write.
    bool prealloc = false, tried = false;  // tried: fallocate ran (it may have kept blocks)
    std::uint64_t size = 0, reserved = 0;
  };
  static void close_out(Out& o);  // gives back the unused reserved space, closes the file
  Out* out_for(std::string_view conn);  // null when its file cannot be opened
  static char* reserve(Out& o, std::size_t n);
  void written(Out& o);  // after an append: write by size, or arm the timer
  void flush_locked(Out& o);
  void flush_all_locked();
  void arm_locked();
  std::string path_;
  bool per_connection_ = false;
  Out main_;                                        // single-file mode
  std::map<std::string, Out, std::less<>> files_;   // per-connection mode
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::chrono::milliseconds delay_{0};
  bool armed_ = false;
  mutable std::mutex mu_;
  std::string error_;
};

}  // namespace lockstep::proxy
