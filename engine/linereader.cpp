#include "engine/linereader.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define LOCKSTEP_MAPPED_READS 1
#endif

namespace lockstep {

namespace {
constexpr std::size_t kBlock = 1 << 20;
// Pages behind the reading are let go in steps of this size.
constexpr std::size_t kReleaseStep = 4u << 20;

#if defined(LOCKSTEP_MAPPED_READS)
// A file mapping raises SIGBUS where a page lies beyond the file's end, which happens
// when the file is truncated while it is read. The handler puts zero pages over the rest
// of the mapping and notes it; the reader then stops with an error. A SIGBUS anywhere
// else goes to what handled it before.
struct GuardSlot {
  std::atomic<std::uintptr_t> begin{0}, end{0};
  std::atomic<bool> hit{false};
};
constexpr int kGuardSlots = 64;
GuardSlot g_slots[kGuardSlots];
std::uintptr_t g_page = 4096;
struct sigaction g_previous;
std::once_flag g_installed;
std::mutex g_slots_mu;  // taking and giving back slots (not used by the handler)

extern "C" void on_sigbus(int sig, siginfo_t* si, void*) {
  if (si->si_code > 0) {  // raised by the kernel for the access at si_addr
    const auto a = reinterpret_cast<std::uintptr_t>(si->si_addr);
    for (auto& s : g_slots) {
      const std::uintptr_t b = s.begin.load(std::memory_order_acquire);
      const std::uintptr_t e = s.end.load(std::memory_order_acquire);
      if (b == 0 || a < b || a >= e) continue;
      const std::uintptr_t from = a & ~(g_page - 1);
      if (::mmap(reinterpret_cast<void*>(from), e - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
          MAP_FAILED) {
        s.hit.store(true, std::memory_order_release);
        return;  // the access is made again and reads zeros
      }
    }
  }
  ::sigaction(SIGBUS, &g_previous, nullptr);
  if (si->si_code <= 0) ::raise(sig);
  // A fault: returning makes the access again, which the previous disposition now meets.
}

void install_guard() {
  g_page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_previous);
}

int take_slot(const char* p, std::size_t n) {
  std::call_once(g_installed, install_guard);
  std::lock_guard lock(g_slots_mu);
  for (int i = 0; i < kGuardSlots; ++i) {
    if (g_slots[i].begin.load(std::memory_order_relaxed) != 0) continue;
    g_slots[i].hit.store(false, std::memory_order_relaxed);
    g_slots[i].end.store(reinterpret_cast<std::uintptr_t>(p) + n, std::memory_order_release);
    g_slots[i].begin.store(reinterpret_cast<std::uintptr_t>(p), std::memory_order_release);
    return i;
  }
  return -1;
}

void give_back(int slot) {
  std::lock_guard lock(g_slots_mu);
  g_slots[slot].begin.store(0, std::memory_order_release);
  g_slots[slot].end.store(0, std::memory_order_release);
}
#endif
}  // namespace

LineReader::LineReader(std::FILE* f, std::size_t cap, bool map) : f_(f), cap_(cap) {
#if defined(LOCKSTEP_MAPPED_READS)
  {
    struct stat st {};
    const int fd = ::fileno(f_);
    regular_ = fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  }
#endif
  if (!(map && map_file())) {
    buf_.resize(kBlock);
    data_ = buf_.data();
#if defined(LOCKSTEP_MAPPED_READS)
    struct stat st {};
    const int fd = ::fileno(f_);
    if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size_seen_ = static_cast<std::uint64_t>(st.st_size);
#endif
  }
}

LineReader::~LineReader() {
#if defined(LOCKSTEP_MAPPED_READS)
  if (map_) {
    give_back(guard_);
    ::munmap(map_, map_len_);
  }
#endif
}

// Maps the whole file when it is a regular one read from its start.
bool LineReader::map_file() {
#if defined(LOCKSTEP_MAPPED_READS)
  const int fd = ::fileno(f_);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return false;
  const off_t at = ::lseek(fd, 0, SEEK_CUR);
  if (at != 0 || std::ftell(f_) != 0) return false;
  return map_whole(static_cast<std::size_t>(st.st_size));
#else
  return false;
#endif
}

bool LineReader::remap() {
#if defined(LOCKSTEP_MAPPED_READS)
  struct stat st {};
  if (::fstat(::fileno(f_), &st) != 0 || st.st_size <= 0 || static_cast<std::size_t>(st.st_size) <= map_len_) return false;
  return map_whole(static_cast<std::size_t>(st.st_size));  // without a guard, what was added is not read
#else
  return false;
#endif
}

// Maps the first `n` octets of the file, with a guard, in place of any mapping before;
// false when either cannot be had.
bool LineReader::map_whole(std::size_t n) {
#if defined(LOCKSTEP_MAPPED_READS)
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, ::fileno(f_), 0);
  if (p == MAP_FAILED) return false;
  const int slot = take_slot(static_cast<const char*>(p), n);
  if (slot < 0) {
    ::munmap(p, n);
    return false;
  }
  if (map_) {
    give_back(guard_);
    ::munmap(map_, map_len_);
  }
  guard_ = slot;
  map_ = static_cast<char*>(p);
  data_ = map_;
  map_len_ = end_ = n;
  released_ = 0;
  return true;
#else
  (void)n;
  return false;
#endif
}

bool LineReader::check_intact() {
#if defined(LOCKSTEP_MAPPED_READS)
  if (!map_ || !g_slots[guard_].hit.load(std::memory_order_acquire)) return true;
  if (!shrank_) {
    struct stat st {};
    shrank_at_ = ::fstat(::fileno(f_), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    shrank_ = true;
  }
  return false;
#else
  return true;
#endif
}

void LineReader::release_behind() {
#if defined(LOCKSTEP_MAPPED_READS)
  if (pos_ - released_ < kReleaseStep) return;
  const std::size_t upto = pos_ & ~static_cast<std::size_t>(g_page - 1);
  ::madvise(map_ + released_, upto - released_, MADV_DONTNEED);
  released_ = upto;
#endif
}

std::string LineReader::error_text() const {
  if (shrank_)
    return fmt::format("the file shrank to {} bytes while it was read (rotated by truncation?): what followed "
                       "was not read",
                       shrank_at_);
  return error_ ? "read error" : "";
}

bool LineReader::fill() {
  if (map_ || eof_) return false;
  end_ = std::fread(buf_.data(), 1, buf_.size(), f_);
  pos_ = 0;
  read_ += end_;
  if (end_ == 0) {
    eof_ = true;
    if (std::ferror(f_)) error_ = true;
#if defined(LOCKSTEP_MAPPED_READS)
    // A file now shorter than it was, or than what was read of it, was cut under the
    // reader (a log rotated by truncation): the reading ends with an error, not with the
    // cut line.
    struct stat st {};
    if (::fstat(::fileno(f_), &st) == 0 && S_ISREG(st.st_mode)) {
      const auto now = static_cast<std::uint64_t>(st.st_size);
      if (now < std::max(read_, size_seen_)) {
        shrank_ = true;
        shrank_at_ = now;
      }
    }
#endif
    return false;
  }
  return true;
}

std::string_view LineReader::peek() {
  if (pos_ >= end_) fill();
  return std::string_view(data_ + pos_, std::min(end_ - pos_, kBlock));
}

bool LineReader::next(std::string_view& line) {
  long_.clear();
  truncated_ = false;
  if (map_) return next_mapped(line);
  bool spanning = false;
  std::uint64_t total = 0;
  for (;;) {
    if (pos_ >= end_ && !fill()) {
      if (!spanning || shrank_) return false;
      ++lineno_;
      line = long_;
      return true;  // the last line had no LF
    }
    const char* start = data_ + pos_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
    const std::size_t n = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
    if (!spanning && nl) {  // the common case: the whole line is in the block
      pos_ += n + 1;
      ++lineno_;
      line = std::string_view(start, n > cap_ ? cap_ : n);
      truncated_ = n > cap_;
      return true;
    }
    spanning = true;
    if (long_.size() < cap_) long_.append(start, std::min(n, cap_ - long_.size()));
    total += n;
    truncated_ = total > cap_;
    pos_ += n;
    if (nl) {
      ++pos_;
      ++lineno_;
      line = long_;
      return true;
    }
  }
}

// The LF that ends the line at `start`, or null. A line longer than the cap is searched
// a step at a time, letting go of its pages beyond the cap (nobody sees them): a
// gigabyte without a line end is read in bounded memory.
const char* LineReader::find_lf(const char* start) {
  const std::size_t left = static_cast<std::size_t>(map_ + end_ - start);
  std::size_t searched = 0;
  std::uintptr_t dropped = 0;  // pages of this line let go up to here
  while (searched < left) {
    const std::size_t step = std::min(kReleaseStep, left - searched);
    if (const void* nl = std::memchr(start + searched, '\n', step)) return static_cast<const char*>(nl);
    searched += step;
#if defined(LOCKSTEP_MAPPED_READS)
    const auto page = [](const char* p) { return reinterpret_cast<std::uintptr_t>(p) & ~(g_page - 1); };
    if (searched > cap_ + 2 * kReleaseStep) {
      const std::uintptr_t from = std::max(page(start + cap_) + g_page, dropped);
      const std::uintptr_t to = page(start + searched - kReleaseStep);
      if (to > from) {
        ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
        dropped = to;
      }
    }
#endif
  }
  return nullptr;
}

// Every line lies whole in the mapping: no copy, whatever its length.
bool LineReader::next_mapped(std::string_view& line) {
  release_behind();
  for (;;) {
    if (!check_intact() || (pos_ >= end_ && !remap())) return false;
    const char* start = map_ + pos_;
    const char* nl = find_lf(start);
    if (!nl && remap()) continue;  // the file grew: the line may go on
    if (!check_intact()) return false;  // the search met pages the file no longer has
    const std::size_t n = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
    pos_ += nl ? n + 1 : n;
    ++lineno_;
    line = std::string_view(start, n > cap_ ? cap_ : n);
    truncated_ = n > cap_;
    return true;
  }
}

std::string_view LineReader::ahead(std::size_t max) {
  truncated_ = false;
  if (map_) {
    if (pos_ >= end_ || !check_intact()) return {};
    release_behind();
  } else if (pos_ >= end_ && !fill()) {
    return {};
  }
  // The rest of the mapping or of the block (a line that goes on past the block is left
  // to next()).
  return {data_ + pos_, std::min({end_ - pos_, cap_ + 1, max})};
}

bool LineReader::read_at(std::uint64_t at, char* out, std::size_t n) const {
#if defined(LOCKSTEP_MAPPED_READS)
  if (!regular_) return false;
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(::fileno(f_), out + got, n - got, static_cast<off_t>(at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
#else
  (void)at, (void)out, (void)n;
  return false;
#endif
}

bool LineReader::take(std::size_t n) {
  if (!check_intact()) return false;
  pos_ += n;
  ++lineno_;
  return true;
}

}  // namespace lockstep
