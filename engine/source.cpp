#include "engine/source.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "engine/env.hpp"

namespace lockstep {

namespace {
// Owns the FILE behind a LineReader.
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f && f != stdin) std::fclose(f);
  }
};

class OwningSource final : public Source {
 public:
  OwningSource(std::unique_ptr<std::FILE, FileCloser> f, std::unique_ptr<Source> inner)
      : f_(std::move(f)), inner_(std::move(inner)) {}
  bool next(SourceEvent& ev) override {
    const bool ok = inner_->next(ev);
    skipped_lines = inner_->skipped_lines;
    first_skipped = inner_->first_skipped;
    return ok;
  }
  SourceInfo info() const override { return inner_->info(); }
  std::string error() const override { return inner_->error(); }
  bool rereadable() const override { return inner_->rereadable(); }
  bool span(std::uint64_t& begin, std::uint64_t& end) const override { return inner_->span(begin, end); }
  bool reread(std::uint64_t at, char* out, std::size_t n) const override { return inner_->reread(at, out, n); }

 private:
  std::unique_ptr<std::FILE, FileCloser> f_;
  std::unique_ptr<Source> inner_;
};

bool looks_like_socat_header(std::string_view l) {
  return l.size() > 24 && (l[0] == '>' || l[0] == '<') && l[1] == ' ' && l[6] == '/' && l[9] == '/' &&
         l.find("length=") != std::string_view::npos;
}
}  // namespace

std::string sniff_format(std::string_view head) {
  std::size_t pos = 0;
  int looked = 0;
  while (pos < head.size() && looked < 200) {
    auto nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view l = head.substr(pos, nl - pos);
    pos = nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty() || l[0] == '#') continue;
    ++looked;
    if (l[0] == '{') return "jsonl";
    if (looks_like_socat_header(l)) return "socat";
    if ((l.find("/lmtp[") != std::string_view::npos || l.find("/smtp[") != std::string_view::npos) &&
        l.find("]: ") != std::string_view::npos)
      return "postfix";
  }
  return "";
}

std::unique_ptr<Source> open_source(const std::string& path, const std::string& format, std::string& error) {
  std::FILE* raw = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!raw) {
    error = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<std::FILE, FileCloser> f(raw);
  // LOCKSTEP_MMAP=1 maps a regular file instead of reading it in blocks.
  auto reader = std::make_unique<LineReader>(raw, std::size_t{8} << 20, env_switch("LOCKSTEP_MMAP"));
  const std::string_view head = reader->peek();
  if (reader->error()) {
    error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  std::string fmt_name = format.empty() || format == "auto" ? sniff_format(head) : format;
  if (fmt_name.empty()) {
    if (head.empty()) error = fmt::format("{}: the file is empty", path);
    else
      error = fmt::format(
          "{}: unknown format: not a lockstep recording (JSON Lines), a Postfix lmtp/smtp -v log or a "
          "socat -v dump (use --input-format to say which)",
          path);
    return nullptr;
  }
  std::unique_ptr<Source> inner;
  if (fmt_name == "jsonl") inner = make_jsonl_source(std::move(reader));
  else if (fmt_name == "postfix") inner = make_postfix_source(std::move(reader));
  else if (fmt_name == "socat") inner = make_socat_source(std::move(reader));
  else {
    error = fmt::format("unknown input format '{}': use jsonl, postfix or socat", fmt_name);
    return nullptr;
  }
  return std::make_unique<OwningSource>(std::move(f), std::move(inner));
}

}  // namespace lockstep
