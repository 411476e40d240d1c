#include "proxy/recorder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <deque>
#include <thread>
#include <utility>
#include <vector>
#include <cerrno>
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "engine/jsonl.hpp"

namespace lockstep::proxy {

namespace {
int open_append(const std::string& p) { return ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); }

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Opens a recording for appending and writes the meta line: always when lockstep starts
// (it marks the run in a file it appends to), otherwise into a new (empty) file only, so
// that every file, rotated ones too, says which lockstep wrote it.
enum class Meta : bool { if_new, always };
int open_recording(const std::string& p, Meta meta) {
  const int fd = open_append(p);
  struct stat st {};
  if (fd >= 0 && (meta == Meta::always || (::fstat(fd, &st) == 0 && st.st_size == 0)))
    write_all(fd, jsonl_meta(0, LOCKSTEP_VERSION));
  return fd;
}

constexpr std::size_t kFlushAt = 64 * 1024;    // write once this much is waiting
// Single-file mode reserves the file's blocks this far ahead of its end (fallocate,
// keeping the size). Appending into reserved blocks costs the kernel far less than
// appending past them: on ext4, write(2) then skips the per-page block reservation,
// which made the page-cache copy of a 100 KB message 2-10 times dearer.
constexpr std::uint64_t kReserveStep = 32u << 20;
constexpr std::size_t kKeepAtMost = 4u << 20;  // a buffer grown past this is freed after its write
// Direct writes (see flush_locked): in blocks of 4 MiB, page aligned. Each block is a
// hand-over to the writer thread and back, two or three context switches: blocks of 1 MiB
// cost 5-7 % more CPU per 100 KB message, on a virtual machine whose switches are dear
// (bench/proxy_ab.sh). The timer's whole flushes still write what waits every
// kRecordFlushDelay, so a block's size does not delay the file.
constexpr std::size_t kPage = 4096;
constexpr std::size_t kDirectBlock = 4u << 20;
constexpr std::size_t kDirectAtLeast = 64u << 10;  // a whole flush writes less through the page cache

std::uint64_t file_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : ~std::uint64_t{0};
}

// Writes s at `at`; returns the octets written (all of them, or fewer on an error).
std::size_t pwrite_all(int fd, std::string_view s, std::uint64_t at) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::pwrite(fd, s.data() + done, s.size() - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}
std::string write_failed() { return fmt::format("writing the recording failed: {}", std::strerror(errno)); }

constexpr std::size_t kBlockRoom = kDirectBlock + (512u << 10);  // a block, with room for the last event (a 64 KiB read escaped)
constexpr std::size_t kQueueAtMost = 8u << 20;  // octets waiting for the writer before events wait

std::string safe_name(std::string_view conn) {
  std::string s;
  for (char c : conn) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return s;
}
}  // namespace

// The thread that makes the direct writes, in the order they were queued, so that the
// relay never waits for the disk. A queued block that no longer fits the file (it was
// truncated, or another writer appended) is appended through the page cache instead, and
// `broken` tells the recorder to realign (resync) once the queue is empty.
struct Recorder::Writer {
  struct Job {
    Buffer buf;  // direct: a block; buf[start, end) goes to `base + start`, buf[start, done)
                 // is in the file already. Otherwise buf[0, end) is appended.
    std::size_t start = 0, done = 0, end = 0;
    std::uint64_t base = 0;
    int fd = -1, direct = -1;  // direct < 0: an append through the page cache
  };
  std::mutex mu;
  std::condition_variable wake, idle;
  std::deque<Job> jobs;
  std::size_t queued = 0;  // octets in `jobs`
  bool busy = false, stop = false, broken = false;
  std::vector<Buffer> spare;  // blocks written, for reuse
  std::string error;
  std::thread thread;

  Writer() : thread([this] { run(); }) {}
  ~Writer() {
    {
      std::lock_guard l(mu);
      stop = true;
    }
    wake.notify_all();
    thread.join();
  }
  bool idle_now() const { return jobs.empty() && !busy; }
  void wait_idle(std::unique_lock<std::mutex>& l) { idle.wait(l, [&] { return idle_now(); }); }
  void push(std::unique_lock<std::mutex>& l, Job j) {
    idle.wait(l, [&] { return queued < kQueueAtMost; });  // a slow disk slows the relay, memory stays bounded
    queued += j.end - j.start;
    jobs.push_back(std::move(j));
    wake.notify_one();
  }
  Buffer take_block() {  // under mu
    Buffer b;
    if (!spare.empty()) {
      b = std::move(spare.back());
      spare.pop_back();
    } else {
      b.grow(kBlockRoom, 0);
    }
    return b;
  }
  void run() {
    std::unique_lock l(mu);
    for (;;) {
      wake.wait(l, [&] { return stop || !jobs.empty(); });
      if (jobs.empty()) return;  // stopping, and everything is written
      Job j = std::move(jobs.front());
      jobs.pop_front();
      busy = true;
      bool off = broken;
      l.unlock();
      std::string err = write(j, off);
      l.lock();
      queued -= j.end - j.start;
      busy = false;
      broken = off;
      if (!err.empty() && error.empty()) error = std::move(err);
      if (j.direct >= 0 && j.buf.cap == kBlockRoom && spare.size() < 2) spare.push_back(std::move(j.buf));
      idle.notify_all();
    }
  }
  static std::string write(const Job& j, bool& off) {
    std::size_t from = j.start;
    if (j.direct >= 0 && !off) {
      if (file_size(j.fd) == j.base + j.done) {
        from += pwrite_all(j.direct, std::string_view(j.buf.p.get() + j.start, j.end - j.start), j.base + j.start);
        if (from == j.end) return {};
      }
      off = true;  // the file changed under the recorder, or the direct write failed
    }
    from = std::max(from, j.done);
    return write_all(j.fd, std::string_view(j.buf.p.get() + from, j.end - from)) ? std::string() : write_failed();
  }
};

std::unique_ptr<Recorder> Recorder::open(const std::string& path, std::string& error) {
  std::unique_ptr<Recorder> r(new Recorder());
  r->path_ = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    r->per_connection_ = true;
    const std::string probe = path + "/.lockstep-write-test";
    const int fd = open_append(probe);
    if (fd < 0) {
      error = fmt::format("cannot write recordings into {}: {}", path, std::strerror(errno));
      return nullptr;
    }
    ::close(fd);
    ::unlink(probe.c_str());
    return r;
  }
  r->main_.fd = open_recording(path, Meta::always);
  if (r->main_.fd < 0) {
    error = fmt::format("cannot open the recording {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  r->main_.prealloc = true;
  r->main_.size = file_size(r->main_.fd);
  r->start_direct(r->main_, path);
  return r;
}

void Recorder::Buffer::grow(std::size_t n, std::size_t keep) {
  const std::size_t cap2 = (n + kPage - 1) / kPage * kPage;
  std::unique_ptr<char, void (*)(void*)> q(static_cast<char*>(std::aligned_alloc(kPage, cap2)), std::free);
  if (!q) throw std::bad_alloc();
  if (keep) std::memcpy(q.get(), p.get(), keep);
  p = std::move(q);
  cap = cap2;
}

void Recorder::start_direct(Out& o, const std::string& path) {
  // Read and write: the last partial page of the file is read back into the buffer.
  o.direct = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (o.direct < 0) return;  // the file system cannot: appends through the page cache
  o.base = 0;
  if (!resync(o)) {
    stop_direct(o);
    return;
  }
  if (!writer_) writer_ = std::make_unique<Writer>();
}

bool Recorder::resync(Out& o) {
  const std::uint64_t now = file_size(o.fd);
  if (now == ~std::uint64_t{0}) return false;
  if (now == o.base + o.done) return true;
  // The file is not as this recorder left it (truncated by a copytruncate rotation, or
  // appended to by another writer): the buffer restarts at its present last page.
  const std::size_t pending = o.used - o.done;
  const std::uint64_t base = now / kPage * kPage;
  const auto part = static_cast<std::size_t>(now - base);
  Buffer b;
  b.grow(std::max(kPage + pending, kBlockRoom), 0);
  if (part && ::pread(o.direct, b.data(), kPage, static_cast<off_t>(base)) != static_cast<ssize_t>(part)) return false;
  if (pending) std::memcpy(b.data() + part, o.buf.data() + o.done, pending);
  o.buf = std::move(b);
  o.used = part + pending;
  o.done = part;
  o.base = base;
  o.size = now;
  o.reserved = 0;  // a truncation took the reserved blocks along
  return true;
}

void Recorder::stop_direct(Out& o) {
  if (o.direct >= 0) ::close(o.direct);
  o.direct = -1;
  if (o.done == 0) return;
  // What the file has already leaves the buffer.
  std::memmove(o.buf.data(), o.buf.data() + o.done, o.used - o.done);
  o.used -= o.done;
  o.done = 0;
}

Recorder::~Recorder() {
  flush();
  writer_.reset();
  close_out(main_);
  for (auto& [k, o] : files_) close_out(o);
}

void Recorder::close_out(Out& o) {
  if (o.fd < 0) return;
  if (o.tried) {
    // The blocks past the end go back: truncating to the same length frees them (a
    // SIGKILL leaves them reserved, never written). Only when the file is as this
    // recorder left it: another writer, or a copytruncate rotation, is not cut short.
    struct stat st {};
    if (::fstat(o.fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) == o.size)
      (void)::ftruncate(o.fd, st.st_size);
  }
  ::close(o.fd);
  o.fd = -1;
  if (o.direct >= 0) ::close(o.direct);
  o.direct = -1;
  o.size = o.reserved = o.base = 0;
  o.used = o.done = 0;
  o.tried = false;
}

Recorder::Out* Recorder::out_for(std::string_view conn) {
  if (!per_connection_) return &main_;
  auto it = files_.find(conn);
  if (it != files_.end()) return &it->second;
  const int fd = open_recording(fmt::format("{}/conn-{}.jsonl", path_, safe_name(conn)), Meta::always);
  if (fd < 0) {
    if (error_.empty()) error_ = fmt::format("cannot open a recording in {}: {}", path_, std::strerror(errno));
    return nullptr;
  }
  Out& o = files_[std::string(conn)];
  o.fd = fd;
  o.size = file_size(fd);
  return &o;
}

char* Recorder::reserve(Out& o, std::size_t n) {
  if (o.buf.cap < o.used + n) o.buf.grow(std::max({o.used + n, 2 * o.buf.cap, kFlushAt * 2}), o.used);
  return o.buf.data() + o.used;
}

bool Recorder::reserve_due(const Out& o) { return o.prealloc && o.size + (o.used - o.done) > o.reserved; }

void Recorder::reserve_blocks(Out& o) {
  if (!reserve_due(o)) return;
  const std::uint64_t now = file_size(o.fd);
  if (now != ~std::uint64_t{0}) o.size = now;
  const std::uint64_t want = o.size + std::max<std::uint64_t>(kReserveStep, o.used);
  // Not every file system can (tmpfs can, some network ones cannot): then plain appends.
  o.tried = true;
  ++o.reservations;
  if (::fallocate(o.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(o.size), static_cast<off_t>(want - o.size)) == 0)
    o.reserved = want;
  else
    o.prealloc = false;
}

void Recorder::flush_locked(Out& o, bool whole) {
  if (o.used == o.done) return;
  if (o.direct >= 0) {
    flush_direct(o, whole);
    if (o.direct >= 0) return;
  }
  reserve_blocks(o);
  o.size += o.used;
  if (!write_all(o.fd, std::string_view(o.buf.data(), o.used)) && error_.empty())
    error_ = write_failed();
  o.used = 0;
  if (o.buf.cap > kKeepAtMost) o.buf.release();
}

// Direct mode: whole pages go to the disk without the page cache, from buf[0] at file
// offset `base`, written by the writer thread. That saves the kernel's copy into the
// page cache and its page-by-page bookkeeping, the larger part of a relay's cost per
// 100 KB message, and a recording of hours of mail does not push the mail server's
// files out of memory. The last partial page stays in the buffer for the next block; a
// whole flush writes it, and anything under kDirectAtLeast, through the page cache as
// well (the next direct write rewrites that page).
void Recorder::flush_direct(Out& o, bool whole) {
  Writer& w = *writer_;
  std::unique_lock l(w.mu);
  if (w.broken) {
    // A block did not fit the file (truncated by a copytruncate rotation, or appended to
    // by another writer): once the queue is written, start again from its last page.
    w.wait_idle(l);
    w.broken = false;
  }
  // The whole pages a direct write takes now, [start, end) of the buffer; end 0 when there
  // are none, or a whole flush has too few (they go through the page cache with the rest).
  const auto direct_pages = [&]() -> std::pair<std::size_t, std::size_t> {
    const std::size_t end = o.used / kPage * kPage, start = o.done / kPage * kPage;
    if (end > o.done && (!whole || end - start >= kDirectAtLeast)) return {start, end};
    return {0, 0};
  };
  // Before a direct write or a reservation, with nothing queued, the file is compared
  // with what this recorder wrote (one fstat). An append alone needs no check: O_APPEND
  // puts it at the end whatever became of the file, and the next direct write checks
  // first. Blocks are reserved only then: in direct mode the recorder's idea of the
  // file's length is where its writes go, and a reservation measured from a file cut
  // short by a rotation would leave that idea past the reserved blocks, so that every
  // later flush reserved again (each reservation walks the file's extents: a recording
  // cut while it was written in blocks made a relay spend most of its time there).
  const bool idle = w.idle_now();
  if (idle && (direct_pages().second || reserve_due(o)) && !resync(o)) {
    stop_direct(o);
    return;
  }
  if (idle) reserve_blocks(o);
  if (const auto [start, end] = direct_pages(); end) {
    Buffer next = w.take_block();
    if (next.cap < o.used - end) next.grow(o.used - end, 0);
    std::memcpy(next.data(), o.buf.data() + end, o.used - end);
    w.push(l, Writer::Job{std::move(o.buf), start, o.done, end, o.base, o.fd, o.direct});
    o.buf = std::move(next);
    o.used -= end;
    o.done = 0;
    o.base += end;
  }
  if (whole && o.used > o.done) {
    const std::string_view rest(o.buf.data() + o.done, o.used - o.done);
    if (w.idle_now()) {
      if (!write_all(o.fd, rest) && error_.empty())
        error_ = write_failed();
    } else {
      Writer::Job j;
      j.buf.grow(rest.size(), 0);
      std::memcpy(j.buf.data(), rest.data(), rest.size());
      j.end = rest.size();
      j.fd = o.fd;
      w.push(l, std::move(j));
    }
    o.done = o.used;
  }
  // The whole pages the file has (or will have) leave the buffer.
  const std::size_t drop = o.done / kPage * kPage;
  if (drop) {
    std::memmove(o.buf.data(), o.buf.data() + drop, o.used - drop);
    o.used -= drop;
    o.done -= drop;
    o.base += drop;
  }
  o.size = o.base + o.done;
}

void Recorder::wait_written() {
  if (!writer_) return;
  std::unique_lock l(writer_->mu);
  writer_->wait_idle(l);
}

void Recorder::flush_all_locked() {
  flush_locked(main_, true);
  for (auto& [conn, o] : files_) flush_locked(o, true);
}

void Recorder::arm_locked() {
  if (armed_ || !timer_) return;
  armed_ = true;
  timer_->expires_after(delay_);
  timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: the recorder is going away (its destructor flushes)
    std::lock_guard lock(mu_);
    armed_ = false;
    flush_all_locked();
  });
}

void Recorder::written(Out& o) {
  if (o.used >= (o.direct >= 0 ? kDirectBlock : kFlushAt)) flush_locked(o, false);
  else arm_locked();
}

void Recorder::flush_on(boost::asio::any_io_executor ex, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  timer_ = std::make_unique<boost::asio::steady_timer>(ex);
  delay_ = delay;
}

void Recorder::write(std::string_view conn, std::string_view line) {
  std::lock_guard lock(mu_);
  Out* o = out_for(conn);
  if (!o) return;
  std::memcpy(reserve(*o, line.size()), line.data(), line.size());
  o->used += line.size();
  written(*o);
}

void Recorder::data(std::string_view conn, Time t, Dir dir, std::string_view bytes, TextIndex* ix) {
  if (ix) ix->reset();
  std::lock_guard lock(mu_);
  Out* o = out_for(conn);
  if (!o) return;
  char* const w = reserve(*o, jsonl_data_bound(conn, bytes));
  o->used += static_cast<std::size_t>(jsonl_data_to(w, t, conn, dir, bytes, ix) - w);
  written(*o);
}

void Recorder::flush() {
  std::lock_guard lock(mu_);
  flush_all_locked();
  wait_written();
}

void Recorder::end(std::string_view conn, bool now) {
  std::lock_guard lock(mu_);
  if (!per_connection_) {
    if (!now && timer_) return;  // the end's own line armed the timer
    flush_locked(main_, true);
    wait_written();  // in the file before the session is reported
    return;
  }
  auto it = files_.find(conn);
  if (it == files_.end()) return;
  flush_locked(it->second, true);
  close_out(it->second);
  files_.erase(it);
}

void Recorder::reopen() {
  std::lock_guard lock(mu_);
  flush_all_locked();
  wait_written();
  if (per_connection_) {
    for (auto& [k, o] : files_) {
      close_out(o);
      o.fd = open_recording(fmt::format("{}/conn-{}.jsonl", path_, safe_name(k)), Meta::if_new);
      o.size = file_size(o.fd);
    }
    return;
  }
  const int fd = open_recording(path_, Meta::if_new);
  if (fd < 0) {
    if (error_.empty()) error_ = fmt::format("cannot reopen the recording {}: {}", path_, std::strerror(errno));
    return;
  }
  close_out(main_);
  main_.fd = fd;
  main_.prealloc = true;
  main_.size = file_size(fd);
  start_direct(main_, path_);
}

bool Recorder::direct() const {
  std::lock_guard lock(mu_);
  return main_.direct >= 0;
}

std::uint64_t Recorder::reservations() const {
  std::lock_guard lock(mu_);
  return main_.reservations;
}

std::string Recorder::error() const {
  std::lock_guard lock(mu_);
  if (error_.empty() && writer_) {
    std::lock_guard l(writer_->mu);
    return writer_->error;
  }
  return error_;
}

}  // namespace lockstep::proxy
