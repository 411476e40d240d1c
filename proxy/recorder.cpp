#include "proxy/recorder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
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

std::string safe_name(std::string_view conn) {
  std::string s;
  for (char c : conn) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return s;
}
}  // namespace

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
  return r;
}

Recorder::~Recorder() {
  flush();
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
  o.size = o.reserved = 0;
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
  return &o;
}

char* Recorder::reserve(Out& o, std::size_t n) {
  if (o.buf.size() < o.used + n) o.buf.resize(std::max({o.used + n, 2 * o.buf.size(), kFlushAt * 2}));
  return o.buf.data() + o.used;
}

void Recorder::flush_locked(Out& o) {
  if (o.used == 0) return;
  if (o.prealloc && o.size + o.used > o.reserved) {
    struct stat st {};
    if (::fstat(o.fd, &st) == 0) o.size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t want = o.size + std::max<std::uint64_t>(kReserveStep, o.used);
    // Not every file system can (tmpfs can, some network ones cannot): then plain appends.
    o.tried = true;
    if (::fallocate(o.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(o.size), static_cast<off_t>(want - o.size)) == 0)
      o.reserved = want;
    else
      o.prealloc = false;
  }
  o.size += o.used;
  if (!write_all(o.fd, std::string_view(o.buf.data(), o.used)) && error_.empty())
    error_ = fmt::format("writing the recording failed: {}", std::strerror(errno));
  o.used = 0;
  if (o.buf.size() > kKeepAtMost) std::string().swap(o.buf);
}

void Recorder::flush_all_locked() {
  flush_locked(main_);
  for (auto& [conn, o] : files_) flush_locked(o);
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
  if (o.used >= kFlushAt) flush_locked(o);
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

void Recorder::data(std::string_view conn, Time t, Dir dir, std::string_view bytes) {
  std::lock_guard lock(mu_);
  Out* o = out_for(conn);
  if (!o) return;
  char* const w = reserve(*o, jsonl_data_bound(conn, bytes));
  o->used += static_cast<std::size_t>(jsonl_data_to(w, t, conn, dir, bytes) - w);
  written(*o);
}

void Recorder::flush() {
  std::lock_guard lock(mu_);
  flush_all_locked();
}

void Recorder::end(std::string_view conn) {
  std::lock_guard lock(mu_);
  if (!per_connection_) {
    flush_locked(main_);
    return;
  }
  auto it = files_.find(conn);
  if (it == files_.end()) return;
  flush_locked(it->second);
  close_out(it->second);
  files_.erase(it);
}

void Recorder::reopen() {
  std::lock_guard lock(mu_);
  flush_all_locked();
  if (per_connection_) {
    for (auto& [k, o] : files_) {
      close_out(o);
      o.fd = open_recording(fmt::format("{}/conn-{}.jsonl", path_, safe_name(k)), Meta::if_new);
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
}

std::string Recorder::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

}  // namespace lockstep::proxy
