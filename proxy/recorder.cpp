#include "proxy/recorder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
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

void Recorder::write(std::string_view conn, std::string_view line) {
  std::lock_guard lock(mu_);
  const int fd = fd_for(conn);
  if (fd < 0) return;
  if (!write_all(fd, line) && error_.empty())
    error_ = fmt::format("writing the recording failed: {}", std::strerror(errno));
}

void Recorder::end(std::string_view conn) {
  std::lock_guard lock(mu_);
  if (!per_connection_) return;
  auto it = fds_.find(conn);
  if (it == fds_.end()) return;
  ::close(it->second);
  fds_.erase(it);
}

void Recorder::reopen() {
  std::lock_guard lock(mu_);
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
