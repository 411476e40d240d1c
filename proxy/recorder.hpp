#pragma once
// Writes the JSON Lines recording: one file for every connection, or one file per
// connection when the path is a directory. Events are gathered in memory and written in
// blocks: when 64 KiB are waiting (4 MiB in direct mode), when a connection ends, at
// most `delay` after an event (flush_on), on reopen and at destruction. A crash or a
// SIGKILL loses at most the events of that last moment. The single file is written
// with O_DIRECT where the file system allows, by a thread of its own (flush_direct).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/textindex.hpp"
#include "engine/types.hpp"

namespace lockstep::proxy {

// A mutex held for microseconds by the relay's threads: one that finds it taken spins a
// while before it sleeps, since the holder runs on another CPU and is soon done, and
// sleeping and being woken again would cost more than the wait.
class BriefMutex {
 public:
  void lock() {
    for (int i = 0; i < kSpins; ++i) {
      if (m_.try_lock()) return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    m_.lock();
  }
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }

 private:
  static constexpr int kSpins = 1000;  // some tens of microseconds
  std::mutex m_;
};

class Recorder {
 public:
  // Opens the recording; null with `error` set when the path cannot be written.
  static std::unique_ptr<Recorder> open(const std::string& path, std::string& error);
  ~Recorder();

  // Buffered events are written at most `delay` after they arrived, by a timer on `ex`
  // (without it, only by size, end() and flush()).
  void flush_on(boost::asio::any_io_executor ex, std::chrono::milliseconds delay);
  void write(std::string_view conn, std::string_view line);
  // A data event, formatted straight into the buffer (no line of its own). With `ix`, the
  // TextIndex of `bytes` comes with the escape where it can (see json_escape_to), for
  // the content check; otherwise ix is left invalid.
  void data(std::string_view conn, Time t, Dir dir, std::string_view bytes, TextIndex* ix = nullptr);
  // The connection is over: what it recorded is written, and its file (per-connection
  // mode) is closed. With `now` false, the single file's events wait for the next flush
  // (by size or the timer) like any others.
  void end(std::string_view conn, bool now = true);
  // Writes what is buffered.
  void flush();
  // Reopens the files (after log rotation, SIGHUP).
  void reopen();
  // The first write error, if any (the relay goes on regardless).
  std::string error() const;
  // Whether the single file is written past the page cache (O_DIRECT) now.
  bool direct() const;
  // How many times the single file's blocks were reserved ahead (fallocate) since the
  // recorder was opened; a reservation walks the file's extents, so it must stay rare.
  std::uint64_t reservations() const;

 private:
  Recorder() = default;
  // Page-aligned memory for direct writes.
  struct Buffer {
    std::unique_ptr<char, void (*)(void*)> p{nullptr, std::free};
    std::size_t cap = 0;
    char* data() { return p.get(); }
    void grow(std::size_t n, std::size_t keep);  // to at least n octets, keeping the first `keep`
    void release() { p.reset(); cap = 0; }
  };
  // One file and the events waiting for it.
  struct Out {
    int fd = -1;          // appends through the page cache
    int direct = -1;      // single-file mode: the same file opened with O_DIRECT, or -1
    Buffer buf;           // `used` octets hold events
    std::size_t used = 0;
    std::size_t done = 0;     // direct mode: buf[0, done) is in the file already
    std::uint64_t base = 0;   // direct mode: the file offset of buf[0], a page boundary
    // Disk space reserved ahead of the writes (single-file mode): [0, reserved) of the
    // file has blocks.
    bool prealloc = false, tried = false;  // tried: fallocate ran (it may have kept blocks)
    std::uint64_t size = 0, reserved = 0;  // size: the file's length as this recorder wrote it
    std::uint64_t reservations = 0;        // fallocate calls
  };
  static void close_out(Out& o);  // gives back the unused reserved space, closes the file
  Out* out_for(std::string_view conn);  // null when its file cannot be opened
  static char* reserve(Out& o, std::size_t n);
  void start_direct(Out& o, const std::string& path);  // direct mode when the file system can
  void flush_direct(Out& o, bool whole);
  static bool reserve_due(const Out& o);  // the writes go past the reserved blocks
  static void reserve_blocks(Out& o);  // reserves the file's blocks ahead of its end (fallocate)
  void wait_written();  // until the writer thread has written everything queued
  static void stop_direct(Out& o);
  static bool resync(Out& o);  // direct mode: follows a file changed by others; false on errors
  void written(Out& o);  // after an append: write by size, or arm the timer
  // whole: everything buffered; otherwise a partial last page may stay for later.
  void flush_locked(Out& o, bool whole);
  void flush_all_locked();
  void arm_locked();
  std::string path_;
  bool per_connection_ = false;
  Out main_;                                        // single-file mode
  std::map<std::string, Out, std::less<>> files_;   // per-connection mode
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::chrono::milliseconds delay_{0};
  bool armed_ = false;
  mutable BriefMutex mu_;
  std::string error_;
  struct Writer;  // the thread of the direct writes (single-file mode)
  std::unique_ptr<Writer> writer_;
};

}  // namespace lockstep::proxy
