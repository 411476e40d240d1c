#include "proxy/fault_stage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace lockstep::proxy {

namespace {
constexpr std::size_t kMaxLine = 64 * 1024;  // a command or content line held at most this long

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The lines of a reply, each with its terminator.
std::vector<std::string> lines_of(std::string_view s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < s.size()) {
    std::size_t lf = s.find('\n', at);
    const std::size_t end = lf == std::string_view::npos ? s.size() : lf + 1;
    out.emplace_back(s.substr(at, end - at));
    at = end;
  }
  return out;
}
std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l;
  return s;
}
std::string crlf_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\r\n";
  return s;
}
// "250-x" <-> "250 x": the separator after the code, when the line has one.
void set_sep(std::string& line, char sep) {
  if (line.size() >= 4 && is_digit(line[0]) && is_digit(line[1]) && is_digit(line[2]) && (line[3] == '-' || line[3] == ' '))
    line[3] = sep;
}
// A new code on every line of a reply; an enhanced code's class follows (RFC 3463 §3.1).
void recode(std::vector<std::string>& lines, int code) {
  const std::string c = fmt::format("{:03}", code);
  for (auto& l : lines) {
    if (l.size() < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2])) continue;
    l.replace(0, 3, c);
    if (l.size() >= 6 && (l[4] == '2' || l[4] == '4' || l[4] == '5') && l[5] == '.') l[4] = static_cast<char>('0' + code / 100);
  }
}
std::string terminator_of(std::string_view line) {
  if (line.size() >= 2 && line.substr(line.size() - 2) == "\r\n") return "\r\n";
  if (!line.empty() && line.back() == '\n') return "\n";
  return "";
}
}  // namespace

FaultStage::FaultStage(std::vector<FaultSpec> faults, std::uint64_t seed)
    : faults_(std::move(faults)),
      fired_(faults_.size(), 0),
      rng_(seed),
      tracker_(SessionOptions{true, false, true, true, false}) {
  for (const auto& f : faults_) {
    acts_[f.dir == Dir::client ? 0 : 1] = true;
    if (f.action == FaultAction::pipeline_body) acts_[1] = true;  // the server's own 354 is held back
  }
}

std::size_t FaultStage::held(Dir d) const {
  return d == Dir::client ? held_c_.size() + held_term_.size() : held_s_.size() + coalesced_.size();
}

void FaultStage::pull() {
  while (auto ev = tracker_.next()) {
    if (auto* c = std::get_if<CommandEvent>(&*ev)) {
      const auto v = static_cast<std::size_t>(c->command->verb) % 32;
      ordinals_[c->command->index] = ++verb_count_[v];
      while (ordinals_.size() > 4096) ordinals_.erase(ordinals_.begin());
    } else if (auto* r = std::get_if<ReplyEvent>(&*ev)) {
      done_.push_back({r->reply->index, r->reply->offset, r->reply->end, r->reply->code});
    } else if (auto* p = std::get_if<PairEvent>(&*ev); p && p->client_view) {
      Position pos;
      pos.paired = true;
      pos.kind = p->kind;
      pos.verb = p->verb;
      pos.k = p->k;
      pos.n = p->n;
      pos.label = p->slot;
      if (p->command != UINT32_MAX) {
        pos.command = p->command;
        auto it = ordinals_.find(p->command);
        pos.ordinal = it == ordinals_.end() ? 0 : it->second;
      }
      if ((p->kind == SlotKind::end_of_data || p->kind == SlotKind::bdat_last) && p->k <= 1) ++txn_;
      pos.txn = txn_;
      pairs_[p->reply_index] = pos;
      while (pairs_.size() > 4096) pairs_.erase(pairs_.begin());
    }
  }
}

void FaultStage::from(Dir d, std::string_view bytes, Time t, std::vector<Step>& out) {
  if (ended_) return;  // a fault closed the connection: nothing more goes anywhere
  if (d == Dir::server) {
    held_s_.append(bytes);
    tracker_.feed(Dir::server, bytes, t);
    pull();
    if (!holding_) server_bytes(t, out);  // else release() goes on
    return;
  }
  // The tracker's state before these bytes: whether DATA's 354 had arrived when they were sent.
  const bool content_ok = tracker_.state() == State::data;
  tracker_.feed(Dir::client, bytes, t);
  pull();
  if (!holding_) done_.clear();  // replies completed earlier were handled when they arrived
  if (!acts_[0]) {
    std::vector<Raw> raw;
    write(raw, Dir::client, std::string(bytes));
    commit(raw, out);
    return;
  }
  held_c_.append(bytes);
  if (cmode_ == CMode::after_data && content_ok) {
    cmode_ = CMode::content;
    content_octets_ = 0;
    content_started_ = false;
  }
  client_bytes(out);
}

bool FaultStage::matches(const FaultSpec& f, std::size_t i, const Position& pos) {
  if (f.dir != Dir::server || !pos.paired) return false;
  if (f.times && fired_[i] >= f.times) return false;
  auto nth_ok = [&](std::uint32_t x) { return f.nth == 0 || x == f.nth || (f.and_later && x >= f.nth); };
  switch (f.where) {
    case FaultWhere::greeting: return pos.kind == SlotKind::greeting;
    case FaultWhere::command: return pos.kind == SlotKind::command && pos.verb == f.verb && nth_ok(pos.ordinal);
    case FaultWhere::any: return pos.kind == SlotKind::command && nth_ok(pos.command + 1);
    case FaultWhere::eod:
      return (pos.kind == SlotKind::end_of_data || pos.kind == SlotKind::bdat_last) && nth_ok(pos.k) &&
             (f.txn == 0 || pos.txn == f.txn);
    default: return false;
  }
}

bool FaultStage::matches_command(const FaultSpec& f, std::size_t i, Verb verb, std::uint32_t ordinal,
                                 std::uint32_t index) {
  if (f.dir != Dir::client) return false;
  if (f.times && fired_[i] >= f.times) return false;
  auto nth_ok = [&](std::uint32_t x) { return f.nth == 0 || x == f.nth || (f.and_later && x >= f.nth); };
  if (f.where == FaultWhere::command) return verb == f.verb && nth_ok(ordinal);
  if (f.where == FaultWhere::any) return nth_ok(index + 1);
  return false;
}

std::chrono::milliseconds FaultStage::delay_of(const FaultSpec& f) {
  if (f.jitter.count() <= 0) return f.ms;
  return f.ms + std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, f.jitter.count())(rng_));
}

void FaultStage::note(std::vector<Raw>& raw, Dir stream, const FaultSpec& f, std::string_view what, std::uint64_t length) {
  Raw r;
  r.step.kind = Step::Kind::note;
  r.step.stream = stream;
  r.step.bytes = fmt::format("{}: {}", f.name, what);
  r.step.length = length;
  raw.push_back(std::move(r));
}

void FaultStage::note_text(std::vector<Raw>& raw, Dir stream, std::string text, std::uint64_t length) {
  Raw r;
  r.step.kind = Step::Kind::note;
  r.step.stream = stream;
  r.step.bytes = std::move(text);
  r.step.length = length;
  raw.push_back(std::move(r));
}

void FaultStage::release(Release how, std::string_view text, Time t, std::vector<Step>& out) {
  if (!holding_) return;
  holding_ = false;
  std::vector<Raw> raw;
  std::string bytes = std::move(hold_bytes_);
  hold_bytes_.clear();
  auto shown = [](std::string_view b) {
    std::string s(b.substr(0, 200));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    for (char& c : s)
      if (c == '\r' || c == '\n') c = '|';
    return s;
  };
  switch (how) {
    case Release::pass:
      apply_reply(std::move(bytes), hold_pos_, hold_code_, raw);
      break;
    case Release::drop:
      note_text(raw, Dir::server, fmt::format("web view: dropped the held reply '{}' ({})", shown(bytes), hold_label_), 0);
      break;
    case Release::edit: {
      std::string edited;
      std::size_t at = 0;
      while (at <= text.size()) {
        std::size_t lf = text.find('\n', at);
        if (lf == std::string_view::npos) lf = text.size();
        std::string_view line = text.substr(at, lf - at);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() || lf < text.size()) edited.append(line).append("\r\n");
        at = lf + 1;
      }
      note_text(raw, Dir::server,
                fmt::format("web view: the held reply '{}' ({}) was replaced by '{}'", shown(bytes), hold_label_, shown(edited)),
                edited.size());
      write(raw, Dir::server, std::move(edited));
      break;
    }
  }
  commit(raw, out);
  hold_rest_.insert(hold_rest_.end(), done_.begin(), done_.end());
  done_ = std::move(hold_rest_);
  hold_rest_.clear();
  server_bytes(t, out);
}

void FaultStage::write(std::vector<Raw>& raw, Dir stream, std::string bytes, std::size_t fragment) {
  if (bytes.empty()) return;
  if (fragment == 0 || fragment >= bytes.size()) {
    Raw r;
    r.step.kind = Step::Kind::write;
    r.step.stream = stream;
    r.step.bytes = std::move(bytes);
    raw.push_back(std::move(r));
    return;
  }
  for (std::size_t at = 0; at < bytes.size(); at += fragment) {
    write(raw, stream, bytes.substr(at, fragment));
    raw.back().separate = true;
  }
}

void FaultStage::server_bytes(Time, std::vector<Step>& out) {
  std::vector<Raw> raw;
  for (std::size_t i = 0; i < done_.size(); ++i) {
    const Done& d = done_[i];
    if (ended_) break;
    if (d.end <= held_s_base_) continue;  // passed on already (held too long)
    const std::uint64_t begin = std::max(d.offset, held_s_base_);
    if (begin > held_s_base_) write(raw, Dir::server, held_s_.substr(0, static_cast<std::size_t>(begin - held_s_base_)));
    std::string bytes = held_s_.substr(static_cast<std::size_t>(begin - held_s_base_),
                                       static_cast<std::size_t>(d.end - begin));
    held_s_.erase(0, static_cast<std::size_t>(d.end - held_s_base_));
    held_s_base_ = d.end;
    Position pos;
    if (auto it = pairs_.find(d.index); it != pairs_.end()) {
      pos = it->second;
      pairs_.erase(it);
    }
    if (hold_armed_) {
      hold_armed_ = false;
      holding_ = true;
      hold_bytes_ = std::move(bytes);
      hold_label_ = pos.paired ? (pos.label.empty() ? std::string("(a surplus reply)") : pos.label) : "(unpaired)";
      hold_pos_ = pos;
      hold_code_ = d.code;
      hold_rest_.assign(done_.begin() + static_cast<std::ptrdiff_t>(i) + 1, done_.end());
      done_.clear();
      commit(raw, out);
      Step h;
      h.kind = Step::Kind::hold;
      h.bytes = hold_bytes_;
      out.push_back(std::move(h));
      return;
    }
    apply_reply(std::move(bytes), pos, d.code, raw);
  }
  done_.clear();
  // An unfinished reply longer than any real one: pass it on as it is.
  if (held_s_.size() > kMaxHeld) {
    held_s_base_ += held_s_.size();
    write(raw, Dir::server, std::move(held_s_));
    held_s_.clear();
  }
  commit(raw, out);
  if (ended_) return;
  // Nothing more is owed: a reply waiting to be swapped has nothing to swap with, and
  // coalesced replies are complete.
  if (tracker_.reply_wait_minimum() == 0) {
    if (swap_waiting_) {
      swap_waiting_ = false;
      commit(swapped_, out);
      swapped_.clear();
    }
    flush_coalesced(out);
  }
}

void FaultStage::apply_reply(std::string bytes, const Position& pos, int code, std::vector<Raw>& raw) {
  std::vector<Raw> r;
  if (drop_354_ && code == 354 && pos.paired && pos.verb == Verb::data) {
    drop_354_ = false;
    for (std::size_t i = 0; i < faults_.size(); ++i)
      if (faults_[i].action == FaultAction::pipeline_body) {
        note(r, Dir::server, faults_[i], "the server's own 354 was not passed on (lockstep had answered DATA)", 0);
        break;
      }
    raw.insert(raw.end(), r.begin(), r.end());
    return;
  }
  if (pos.paired && pos.kind == SlotKind::command && early_drop_.count(pos.command)) {
    const std::size_t i = early_drop_[pos.command];
    early_drop_.erase(pos.command);
    note(r, Dir::server, faults_[i], fmt::format("dropped the server's own reply to command {} (answered early)", pos.command + 1), 0);
    raw.insert(raw.end(), r.begin(), r.end());
    return;
  }
  struct Piece { std::size_t fault; std::string bytes; };
  std::vector<Piece> before, after;
  std::vector<std::string> lines = lines_of(bytes);
  std::vector<std::size_t> changed_by;  // faults that changed the reply itself
  bool dropped = false, dup = false, swap = false, coalesce = false;
  std::chrono::microseconds delay{0};
  std::size_t fragment = 0, delay_fault = 0, terminal_fault = 0;
  std::optional<FaultAction> terminal;
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    const FaultSpec& f = faults_[i];
    if (f.action == FaultAction::early) {
      // The reply before command N's: the greeting for N = 1, else command N-1's.
      const bool due = pos.paired && (f.nth == 1 ? pos.kind == SlotKind::greeting
                                                    : pos.kind == SlotKind::command && pos.command + 2 == f.nth);
      if (!due || (f.times && fired_[i] >= f.times)) continue;
      ++fired_[i];
      after.push_back({i, crlf_lines(f.text)});
      early_drop_[f.nth - 1] = i;
      continue;
    }
    if (!matches(f, i, pos)) continue;
    const bool at_line = f.line > 0;
    if (at_line && f.line > lines.size()) continue;  // no such line in this reply
    ++fired_[i];
    switch (f.action) {
      case FaultAction::inject:
        if (at_line) {
          lines.insert(lines.begin() + (f.line - 1), crlf_lines(f.text));
          changed_by.push_back(i);
        } else {
          before.push_back({i, crlf_lines(f.text)});
        }
        break;
      case FaultAction::inject_after:
        if (at_line) {
          lines.insert(lines.begin() + f.line, crlf_lines(f.text));
          changed_by.push_back(i);
        } else {
          after.push_back({i, crlf_lines(f.text)});
        }
        break;
      case FaultAction::replace:
        if (at_line) {
          lines[f.line - 1] = f.code ? fmt::format("{:03}{}", f.code, lines[f.line - 1].substr(std::min<std::size_t>(3, lines[f.line - 1].size())))
                                     : crlf_lines(f.text);
        } else if (f.code && !f.text.empty()) {
          std::vector<std::string> nl;
          for (std::size_t k = 0; k < f.text.size(); ++k)
            nl.push_back(fmt::format("{:03}{}{}\r\n", f.code, k + 1 == f.text.size() ? ' ' : '-', f.text[k]));
          lines = nl;
        } else if (f.code) {
          recode(lines, f.code);
        } else {
          lines = lines_of(crlf_lines(f.text));
        }
        changed_by.push_back(i);
        break;
      case FaultAction::drop:
        if (at_line) {
          const bool last = f.line == lines.size();
          lines.erase(lines.begin() + (f.line - 1));
          if (last && !lines.empty()) set_sep(lines.back(), ' ');
          changed_by.push_back(i);
        } else {
          dropped = true;
          changed_by.push_back(i);
        }
        break;
      case FaultAction::dup: dup = true; changed_by.push_back(i); break;
      case FaultAction::swap: swap = true; changed_by.push_back(i); break;
      case FaultAction::coalesce: coalesce = true; break;
      case FaultAction::split:
        if (f.line < lines.size()) {
          set_sep(lines[f.line - 1], ' ');
          changed_by.push_back(i);
        } else {
          --fired_[i];  // a reply of one line cannot be split
        }
        break;
      case FaultAction::delay:
        delay += delay_of(f);
        delay_fault = i;
        break;
      case FaultAction::fragment: fragment = f.size; break;
      case FaultAction::close:
      case FaultAction::reset:
      case FaultAction::shutdown:
        if (!terminal) {
          terminal = f.action;
          terminal_fault = i;
        }
        break;
      default: break;
    }
  }
  const std::string body = join(lines);
  if (delay.count() > 0) {
    note(r, Dir::server, faults_[delay_fault], fmt::format("held the reply back {} ms", delay.count() / 1000), 0);
    Raw w;
    w.step.kind = Step::Kind::wait;
    w.step.stream = Dir::server;
    w.step.delay = delay;
    r.push_back(std::move(w));
  }
  auto emit = [&](std::string b) {
    const std::size_t at = r.size();
    write(r, Dir::server, std::move(b), fragment);
    for (std::size_t k = at; k < r.size(); ++k) r[k].coalesce = coalesce;
  };
  for (auto& p : before) {
    note(r, Dir::server, faults_[p.fault], fmt::format("injected '{}'", p.bytes.substr(0, p.bytes.size() - 2)), p.bytes.size());
    emit(std::move(p.bytes));
  }
  if (terminal) {
    const FaultSpec& f = faults_[terminal_fault];
    Raw t;
    t.step.stream = Dir::server;
    if (*terminal == FaultAction::shutdown) {
      const std::string b = f.text.empty() ? std::string("421 4.3.2 lockstep: service shutting down (injected)\r\n") : crlf_lines(f.text);
      note(r, Dir::server, f, "answered 421 instead of the reply and closed both connections", b.size());
      emit(b);
      t.step.kind = Step::Kind::close;
    } else {
      note(r, Dir::server, f, *terminal == FaultAction::close ? "closed both connections instead of passing the reply on"
                                                              : "reset the client's connection instead of passing the reply on", 0);
      t.step.kind = *terminal == FaultAction::close ? Step::Kind::close : Step::Kind::reset;
    }
    r.push_back(std::move(t));
    raw.insert(raw.end(), r.begin(), r.end());
    ended_ = true;
    return;
  }
  if (dropped) {
    note(r, Dir::server, faults_[changed_by.front()], fmt::format("dropped '{}'", lines_of(bytes).front().substr(0, 60)), 0);
  } else if (!changed_by.empty() && body != bytes) {
    const FaultSpec& f = faults_[changed_by.front()];
    note(r, Dir::server, f, f.action == FaultAction::split ? fmt::format("split the reply after line {}", f.line)
                                                           : f.action == FaultAction::swap ? "moved the reply after the next one"
                                                                                           : "changed the reply",
         body.size());
    emit(body);
  } else {
    if (swap) note(r, Dir::server, faults_[changed_by.front()], "moved the reply after the next one", body.size());
    emit(body);
  }
  if (dup && !dropped) {
    note(r, Dir::server, faults_[changed_by.front()], "sent the reply a second time", body.size());
    emit(body);
  }
  for (auto& p : after) {
    note(r, Dir::server, faults_[p.fault], fmt::format("injected '{}' after the reply", p.bytes.substr(0, p.bytes.size() - 2)), p.bytes.size());
    emit(std::move(p.bytes));
  }
  if (swap && !swap_waiting_) {
    swapped_ = std::move(r);
    swap_waiting_ = true;
    return;
  }
  raw.insert(raw.end(), r.begin(), r.end());
  if (swap_waiting_) {
    raw.insert(raw.end(), swapped_.begin(), swapped_.end());
    swapped_.clear();
    swap_waiting_ = false;
  }
}

void FaultStage::client_bytes(std::vector<Step>& out) {
  std::vector<Raw> raw;
  for (bool progress = true; progress && !held_c_.empty() && !ended_;) {
    progress = false;
    switch (cmode_) {
      case CMode::bdat: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bdat_left_, held_c_.size()));
        write(raw, Dir::client, held_c_.substr(0, n));
        held_c_.erase(0, n);
        bdat_left_ -= n;
        if (bdat_left_ == 0) cmode_ = CMode::command;
        progress = n > 0;
        break;
      }
      case CMode::content:
        progress = client_content(raw);
        break;
      case CMode::after_data:  // no 354 came before these bytes: they are commands
        cmode_ = CMode::command;
        progress = true;
        break;
      case CMode::command: {
        const std::size_t lf = held_c_.find('\n');
        if (lf == std::string::npos) {
          if (held_c_.size() > kMaxLine) {  // no line end in sight: pass it on unchanged
            write(raw, Dir::client, std::move(held_c_));
            held_c_.clear();
          }
          break;
        }
        std::string line = held_c_.substr(0, lf + 1);
        held_c_.erase(0, lf + 1);
        client_command(std::move(line), raw);
        progress = true;
        break;
      }
    }
  }
  commit(raw, out);
}

void FaultStage::client_command(std::string line, std::vector<Raw>& raw) {
  const std::string term = terminator_of(line);
  std::string text = line.substr(0, line.size() - term.size());
  if (!text.empty() && text.back() == '\r') text.pop_back();  // "...\r\r\n": the CR is not the verb's
  const Command cmd = parse_command(text);
  const std::uint32_t index = ccount_++;
  const std::uint32_t ordinal = ++cverb_count_[static_cast<std::size_t>(cmd.verb) % 32];
  std::string out = line;
  std::vector<std::size_t> changed_by;
  std::string after;
  std::size_t after_fault = 0, fragment = 0, delay_fault = 0, terminal_fault = 0;
  std::chrono::microseconds delay{0};
  std::optional<FaultAction> terminal;
  bool fake354 = false;
  std::size_t fake_fault = 0;
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    const FaultSpec& f = faults_[i];
    if (!matches_command(f, i, cmd.verb, ordinal, index)) continue;
    ++fired_[i];
    const std::string t = terminator_of(out);
    switch (f.action) {
      case FaultAction::bare_lf:
      case FaultAction::bare_cr:
        out = out.substr(0, out.size() - t.size()) + (f.action == FaultAction::bare_lf ? "\n" : "\r");
        changed_by.push_back(i);
        break;
      case FaultAction::long_line:
        if (out.size() < f.len) {
          const std::size_t pad = f.len - out.size();
          out = out.substr(0, out.size() - t.size()) + " " + std::string(pad - 1, 'X') + t;
          changed_by.push_back(i);
        }
        break;
      case FaultAction::after_quit:
        after += crlf_lines(f.text);
        after_fault = i;
        break;
      case FaultAction::pipeline_body:
        fake354 = true;
        fake_fault = i;
        break;
      case FaultAction::delay:
        delay += delay_of(f);
        delay_fault = i;
        break;
      case FaultAction::fragment: fragment = f.size; break;
      case FaultAction::close:
      case FaultAction::reset:
        if (!terminal) {
          terminal = f.action;
          terminal_fault = i;
        }
        break;
      default: break;
    }
  }
  if (delay.count() > 0) {
    note(raw, Dir::client, faults_[delay_fault], fmt::format("held '{}' back {} ms", cmd.label(40), delay.count() / 1000), 0);
    Raw w;
    w.step.kind = Step::Kind::wait;
    w.step.stream = Dir::client;
    w.step.delay = delay;
    raw.push_back(std::move(w));
  }
  if (terminal) {
    note(raw, Dir::client, faults_[terminal_fault],
         fmt::format("{} instead of passing '{}' on", *terminal == FaultAction::close ? "closed both connections" : "reset the client's connection", cmd.label(40)), 0);
    Raw t;
    t.step.kind = *terminal == FaultAction::close ? Step::Kind::close : Step::Kind::reset;
    t.step.stream = Dir::client;
    raw.push_back(std::move(t));
    ended_ = true;
    return;
  }
  if (!changed_by.empty()) note(raw, Dir::client, faults_[changed_by.front()], fmt::format("changed '{}'", cmd.label(40)), out.size());
  write(raw, Dir::client, std::move(out), fragment);
  if (!after.empty()) {
    note(raw, Dir::client, faults_[after_fault], fmt::format("sent '{}' after QUIT", after.substr(0, after.size() - 2)), after.size());
    write(raw, Dir::client, after);
  }
  if (fake354) {
    const std::string reply = "354 lockstep: go ahead (injected; the server has not answered yet)\r\n";
    note(raw, Dir::server, faults_[fake_fault], "answered DATA with 354 before the server did", reply.size());
    write(raw, Dir::server, reply);
    drop_354_ = true;
    cmode_ = CMode::content;
    content_octets_ = 0;
    content_started_ = false;
    return;
  }
  if (cmd.verb == Verb::data) cmode_ = CMode::after_data;
  if (cmd.verb == Verb::bdat && !cmd.syntax.bad_bdat && cmd.bdat_size > 0) {
    cmode_ = CMode::bdat;
    bdat_left_ = cmd.bdat_size;
  }
}

bool FaultStage::client_content(std::vector<Raw>& raw) {
  const std::size_t lf = held_c_.find('\n');
  std::string line;
  if (lf == std::string::npos) {
    if (held_c_.size() <= kMaxLine) return false;
    line = std::move(held_c_);  // a long line: passed on in parts
    held_c_.clear();
  } else {
    line = held_c_.substr(0, lf + 1);
    held_c_.erase(0, lf + 1);
  }
  const bool at_start = !content_mid_line_;
  content_mid_line_ = lf == std::string::npos;
  if (!content_started_) {
    content_started_ = true;
    line_fault_ = -1;
    for (std::size_t i = 0; i < faults_.size() && line_fault_ < 0; ++i) {
      const FaultSpec& f = faults_[i];
      if ((f.action != FaultAction::bare_lf && f.action != FaultAction::bare_cr) || f.where != FaultWhere::content ||
          (f.times && fired_[i] >= f.times))
        continue;
      ++fired_[i];
      line_fault_ = static_cast<int>(i);
      note(raw, Dir::client, f, f.action == FaultAction::bare_lf ? "content lines end in a bare LF" : "content lines end in a bare CR", 0);
    }
  }
  if (at_start && line == ".\r\n") {
    // The client's own bytes pass as they came (a bare LF before the dot included); when
    // lockstep rewrote the line ends (bare-lf, bare-cr), the one before the dot is CRLF,
    // so the real end of data stays unambiguous.
    std::string eod = held_term_ + ".\r\n";
    if (line_fault_ >= 0 && !held_term_.empty()) eod = "\r\n.\r\n";
    for (std::size_t i = 0; i < faults_.size(); ++i) {
      const FaultSpec& f = faults_[i];
      if (f.action != FaultAction::smuggle || (f.times && fired_[i] >= f.times)) continue;
      ++fired_[i];
      std::string s(smuggle_bytes(f.variant));
      for (std::size_t k = 0; k < f.text.size(); ++k) s += (k ? "\r\n" : "") + f.text[k];
      note(raw, Dir::client, f, fmt::format("sent the ambiguous end of data {} before the real one", f.variant), s.size());
      write(raw, Dir::client, s);
      eod = "\r\n.\r\n";
      break;
    }
    write(raw, Dir::client, eod);
    held_term_.clear();
    cmode_ = CMode::command;
    content_octets_ = 0;
    content_started_ = false;
    return true;
  }
  // The line end of the line before goes out now; this line's is held until the next
  // line shows whether it starts the end of data.
  std::string chunk = std::move(held_term_);
  held_term_.clear();
  if (!content_mid_line_) {
    const std::string term = terminator_of(line);
    line.resize(line.size() - term.size());
    held_term_ = term;
    if (line_fault_ >= 0 && term == "\r\n")
      held_term_ = faults_[static_cast<std::size_t>(line_fault_)].action == FaultAction::bare_lf ? "\n" : "\r";
  }
  chunk += line;
  // data+N: cut, close or pause after exactly N octets of content.
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    const FaultSpec& f = faults_[i];
    if (f.where != FaultWhere::data_octets || (f.times && fired_[i] >= f.times)) continue;
    if (f.octets < content_octets_ || f.octets >= content_octets_ + chunk.size()) continue;
    ++fired_[i];
    const auto cut = static_cast<std::size_t>(f.octets - content_octets_);
    write(raw, Dir::client, chunk.substr(0, cut));
    content_octets_ += cut;
    chunk.erase(0, cut);
    Raw s;
    s.step.stream = Dir::client;
    if (f.action == FaultAction::delay) {
      note(raw, Dir::client, f, fmt::format("held the content back {} ms after {} octets", f.ms.count(), f.octets), 0);
      s.step.kind = Step::Kind::wait;
      s.step.delay = f.ms;
      raw.push_back(std::move(s));
      continue;
    }
    note(raw, Dir::client, f, fmt::format("{} after {} octets of content", f.action == FaultAction::close ? "closed both connections" : "reset the client's connection", f.octets), 0);
    s.step.kind = f.action == FaultAction::close ? Step::Kind::close : Step::Kind::reset;
    raw.push_back(std::move(s));
    ended_ = true;
    return false;
  }
  content_octets_ += chunk.size();
  write(raw, Dir::client, std::move(chunk));
  return true;
}

void FaultStage::commit(std::vector<Raw>& raw, std::vector<Step>& out) {
  for (auto& r : raw) {
    Step& s = r.step;
    const int d = s.stream == Dir::client ? 0 : 1;
    if (s.kind == Step::Kind::note) {
      s.offset = out_off_[d];
      out.push_back(std::move(s));
    } else if (s.kind == Step::Kind::write) {
      out_off_[d] += s.bytes.size();
      if (r.coalesce) {
        coalesced_ += s.bytes;
        continue;
      }
      if (d == 1) flush_coalesced(out);
      // Writes that follow each other go out as one, as the peer's would have.
      if (!r.separate && !out.empty() && out.back().kind == Step::Kind::write && out.back().stream == s.stream &&
          !last_separate_) {
        out.back().bytes += s.bytes;
        continue;
      }
      last_separate_ = r.separate;
      out.push_back(std::move(s));
    } else {
      const bool last = s.kind == Step::Kind::close || s.kind == Step::Kind::reset;
      out.push_back(std::move(s));
      if (last) {  // nothing after a close goes anywhere
        ended_ = true;
        break;
      }
    }
  }
  raw.clear();
}

void FaultStage::flush_coalesced(std::vector<Step>& out) {
  if (coalesced_.empty()) return;
  Step s;
  s.kind = Step::Kind::write;
  s.stream = Dir::server;
  s.bytes = std::move(coalesced_);
  coalesced_.clear();
  out.push_back(std::move(s));
}

void FaultStage::eof(Dir d, std::vector<Step>& out) {
  if (ended_) return;
  std::vector<Raw> raw;
  if (d == Dir::server) {
    if (holding_) release(Release::pass, "", 0, out);  // the held reply goes first
    if (swap_waiting_) {
      swap_waiting_ = false;
      raw.insert(raw.end(), swapped_.begin(), swapped_.end());
      swapped_.clear();
    }
    held_s_base_ += held_s_.size();
    write(raw, Dir::server, std::move(held_s_));
    held_s_.clear();
    commit(raw, out);
    flush_coalesced(out);
    return;
  }
  std::string rest = std::move(held_term_);
  held_term_.clear();
  rest += held_c_;
  held_c_.clear();
  write(raw, Dir::client, std::move(rest));
  commit(raw, out);
}

}  // namespace lockstep::proxy
