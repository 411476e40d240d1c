// Reader of lockstep's own recordings (JSON Lines, docs/recording.md).
#include <limits>
#include <fmt/format.h>

#include "engine/jsonl.hpp"
#include "engine/source.hpp"

namespace lockstep {

namespace {
constexpr std::size_t kParseAhead = std::size_t{1} << 20;

class JsonlSource final : public Source {
 public:
  explicit JsonlSource(std::unique_ptr<LineReader> in) : in_(std::move(in)) {}

  SourceInfo info() const override {
    SourceInfo i;
    i.format = "jsonl";
    i.ordered = ordered_;
    i.content_visible = true;
    i.order_note = ordered_ ? "recording: both streams in the order the recorder saw them"
                            : "recording without order information";
    return i;
  }

  bool next(SourceEvent& ev) override {
    std::string_view line;
    for (;;) {
      span_begin_ = in_->offset();
      std::string err;
      // From a mapped file, the parser finds the line's end itself (no search of the line
      // before its parse); anything it does not take as one line whole (a blank line, a
      // bad one, one over 1 MiB, the last one without a LF) is read as a line. The bound
      // keeps what a parse of a line that never ends holds (a recorder's events are one
      // read each, far shorter).
      const std::string_view rest = in_->ahead(kParseAhead);
      std::size_t used = 0;
      // Most lines are data events as the recorder writes them: read straight into `ev`.
      if (RecordedData d; !rest.empty() && rest[0] == '{' && parse_recorded_data(rest, d, ev.bytes, &ev.index)) {
        ev.kind = SourceEvent::Kind::data;
        ev.conn.assign(d.conn);
        ev.dir = d.dir;
        ev.time = d.time;
        ev.a.clear();
        ev.b.clear();
        ev.offset = ev.length = 0;
        ev.located = false;
        if (!in_->take(d.used)) break;  // the file shrank under the parse: its result is void
        span_end_ = in_->offset();
        bad_run_ = 0;
        ++good_;
        return true;
      }
      if (!rest.empty() && rest[0] == '{' && parse_json_line(rest, fields_, nfields_, err, &ev.index, used)) {
        if (!in_->take(used)) break;  // the file shrank under the parse: its result is void
      } else {
        if (!in_->next(line)) break;
        if (line.empty() || line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        if (in_->truncated()) {
          skip(fmt::format("line {}: longer than the reader's limit, skipped", in_->line_number()));
          continue;
        }
        if (!parse_json_object(line, fields_, nfields_, err, &ev.index)) {
          skip(fmt::format("line {}: {}", in_->line_number(), err));
          if (++bad_run_ > 50 && good_ == 0) {
            error_ = fmt::format("line {}: this does not look like a lockstep recording ({})", in_->line_number(), err);
            return false;
          }
          continue;
        }
      }
      bad_run_ = 0;
      if (convert(ev)) {
        span_end_ = in_->offset();
        ++good_;
        return true;
      }
    }
    if (in_->error()) error_ = in_->error_text();
    return false;
  }

  bool rereadable() const override { return in_->regular_file(); }
  bool span(std::uint64_t& begin, std::uint64_t& end) const override {
    begin = span_begin_;
    end = span_end_;
    return in_->regular_file();
  }
  bool reread(std::uint64_t at, char* out, std::size_t n) const override { return in_->read_at(at, out, n); }

 private:
  void skip(std::string why) {
    if (skipped_lines++ == 0) first_skipped = std::move(why);
  }

  bool convert(SourceEvent& ev) {
    // Reset without freeing: the byte buffers are reused from event to event.
    ev.kind = SourceEvent::Kind::data;
    ev.conn.clear();
    ev.dir = Dir::client;
    ev.bytes.clear();
    ev.time = 0;
    ev.a.clear();
    ev.b.clear();
    ev.offset = ev.length = 0;
    ev.located = false;
    std::string_view kind;
    bool has_data = false, has_dir = false;
    for (std::size_t fi = 0; fi < nfields_; ++fi) {
      JsonField& f = fields_[fi];
      const std::string& k = f.key;
      JsonValue& v = f.value;
      // Keys by length and first letter: this runs once per field of every event.
      switch (k.size()) {
        case 1:
          if (k[0] == 't' && v.kind == JsonValue::number) {
            // Seconds with a fraction become microseconds; beyond year 292,000 is no time.
            constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1000000 - 1;
            ev.time = !v.has_frac ? v.num : (v.num > kMaxSeconds || v.num < -kMaxSeconds) ? 0 : v.num * 1000000 + v.frac_us;
          }
          break;
        case 2:
          if (k == "ev") {
            kind_buf_.swap(v.str);
            kind = kind_buf_;
          }
          break;
        case 3:
          if (k == "len" && v.kind == JsonValue::number && v.num >= 0) {
            ev.length = static_cast<std::uint64_t>(v.num);
          } else if (k == "dir") {
            has_dir = true;
            ev.dir = (v.str == "s" || v.str == "server") ? Dir::server : Dir::client;
          }
          break;
        case 4:
          if (k == "conn") {
            if (v.kind == JsonValue::number) ev.conn = std::to_string(v.num);
            else ev.conn.swap(v.str);
          } else if (k == "data") {
            has_data = true;
            ev.bytes.swap(v.str);
          } else if (k == "text") {
            ev.bytes.swap(v.str);
            ev.index.valid = false;  // the index describes "data"
          }
          break;
        case 6:
          if (k == "offset" && v.kind == JsonValue::number && v.num >= 0) {
            ev.offset = static_cast<std::uint64_t>(v.num);
            ev.located = true;
          } else if (k == "client") ev.a.swap(v.str);
          else if (k == "server") ev.b.swap(v.str);
          break;
        case 7:
          if (k == "ordered" && v.kind == JsonValue::boolean) ordered_ = v.num != 0;
          break;
        default:
          break;
      }
    }
    if (kind == "meta") return false;
    if (kind.empty() && has_data) kind = "data";
    if (kind == "data") {
      if (!has_dir || !has_data) { skip(fmt::format("line {}: data event without dir or data", in_->line_number())); return false; }
      ev.kind = SourceEvent::Kind::data;
    } else if (kind == "open") ev.kind = SourceEvent::Kind::open;
    else if (kind == "close") ev.kind = SourceEvent::Kind::close;
    else if (kind == "end") ev.kind = SourceEvent::Kind::end;
    else if (kind == "fault") ev.kind = SourceEvent::Kind::fault;
    else if (kind == "status") ev.kind = SourceEvent::Kind::status;
    else if (kind == "timeout") ev.kind = SourceEvent::Kind::timeout;
    else {
      skip(fmt::format("line {}: unknown event '{}'", in_->line_number(), kind));
      return false;
    }
    if (ev.conn.empty()) ev.conn = "1";
    return true;
  }

  std::unique_ptr<LineReader> in_;
  std::uint64_t span_begin_ = 0, span_end_ = 0;  // the last event's line in the file
  std::vector<JsonField> fields_;
  std::size_t nfields_ = 0;
  std::string kind_buf_;
  bool ordered_ = true;
  std::uint64_t bad_run_ = 0, good_ = 0;
};
}  // namespace

std::unique_ptr<Source> make_jsonl_source(std::unique_ptr<LineReader> in) {
  return std::make_unique<JsonlSource>(std::move(in));
}

}  // namespace lockstep
