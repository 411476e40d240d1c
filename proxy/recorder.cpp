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

constexpr std::size_t kFlushAt = 64 * 1024;    // write once this much is waiting
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
  r->fd_ = open_append(path);
  if (r->fd_ < 0) {
    error = fmt::format("cannot open the recording {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  write_all(r->fd_, jsonl_meta(0, LOCKSTEP_VERSION));
  return r;
}

Recorder::~Recorder() {
  flush();
  if (fd_ >= 0) ::close(fd_);
  for (auto& [k, fd] : fds_) ::close(fd);
}

int Recorder::fd_for(std::string_view conn) {
  if (!per_connection_) return fd_;
  auto it = fds_.find(conn);
  if (it != fds_.end()) return it->second;
  const int fd = open_append(fmt::format("{}/conn-{}.jsonl", path_, safe_name(conn)));
  if (fd < 0) {
    if (error_.empty()) error_ = fmt::format("cannot open a recording in {}: {}", path_, std::strerror(errno));
    return -1;
  }
  write_all(fd, jsonl_meta(0, LOCKSTEP_VERSION));
  fds_.emplace(std::string(conn), fd);
  return fd;
}

Recorder::Pending& Recorder::pending_for(std::string_view conn) {
  if (!per_connection_) return main_;
  auto it = pending_.find(conn);
  if (it == pending_.end()) it = pending_.emplace(std::string(conn), Pending{}).first;
  return it->second;
}

char* Recorder::reserve(Pending& p, std::size_t n) {
  // The buffer only grows (zero-filled once); `used` says how much of it holds events.
  if (p.buf.size() < p.used + n) p.buf.resize(std::max({p.used + n, 2 * p.buf.size(), kFlushAt * 2}));
  return p.buf.data() + p.used;
}

void Recorder::flush_locked(int fd, Pending& p) {
  if (p.used == 0) return;
  if (!write_all(fd, std::string_view(p.buf.data(), p.used)) && error_.empty())
    error_ = fmt::format("writing the recording failed: {}", std::strerror(errno));
  p.used = 0;
  if (p.buf.size() > kKeepAtMost) std::string().swap(p.buf);
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

void Recorder::written(int fd, Pending& p) {
  if (p.used >= kFlushAt) flush_locked(fd, p);
  else arm_locked();
}

void Recorder::flush_on(boost::asio::any_io_executor ex, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  timer_ = std::make_unique<boost::asio::steady_timer>(ex);
  delay_ = delay;
}

void Recorder::write(std::string_view conn, std::string_view line) {
  std::lock_guard lock(mu_);
  const int fd = fd_for(conn);
  if (fd < 0) return;
  Pending& p = pending_for(conn);
  std::memcpy(reserve(p, line.size()), line.data(), line.size());
  p.used += line.size();
  written(fd, p);
}

void Recorder::data(std::string_view conn, Time t, Dir dir, std::string_view bytes) {
  std::lock_guard lock(mu_);
  const int fd = fd_for(conn);
  if (fd < 0) return;
  Pending& p = pending_for(conn);
  char* const w = reserve(p, jsonl_data_bound(conn, bytes));
  p.used += static_cast<std::size_t>(jsonl_data_to(w, t, conn, dir, bytes) - w);
  written(fd, p);
}

void Recorder::flush_all_locked() {
  if (main_.used) flush_locked(fd_, main_);
  for (auto& [conn, p] : pending_)
    if (auto it = fds_.find(conn); it != fds_.end()) flush_locked(it->second, p);
}

void Recorder::flush() {
  std::lock_guard lock(mu_);
  flush_all_locked();
}

void Recorder::end(std::string_view conn) {
  std::lock_guard lock(mu_);
  if (!per_connection_) {
    flush_locked(fd_, main_);
    return;
  }
  auto it = fds_.find(conn);
  if (it == fds_.end()) return;
  if (auto p = pending_.find(conn); p != pending_.end()) {
    flush_locked(it->second, p->second);
    pending_.erase(p);
  }
  ::close(it->second);
  fds_.erase(it);
}

void Recorder::reopen() {
  std::lock_guard lock(mu_);
  flush_all_locked();
  if (per_connection_) {
    for (auto& [k, fd] : fds_) {
      ::close(fd);
      fd = open_append(fmt::format("{}/conn-{}.jsonl", path_, safe_name(k)));
    }
    return;
  }
  const int fd = open_append(path_);
  if (fd < 0) {
    if (error_.empty()) error_ = fmt::format("cannot reopen the recording {}: {}", path_, std::strerror(errno));
    return;
  }
  ::close(fd_);
  fd_ = fd;
}

std::string Recorder::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

}  // namespace lockstep::proxy
