#include "tracer/record_filter.hpp"

#include <cstring>
#include <limits>

namespace vztrace::tracer {

using format::EventKind;

void PauseWindows::pause(std::uint64_t ticks, Callees callees) {
    const std::lock_guard lock(mutex_);
    if (paused_.load(std::memory_order_relaxed)) return;
    windows_.push_back({ticks, std::numeric_limits<std::uint64_t>::max(), callees});
    paused_.store(true, std::memory_order_release);
}

void PauseWindows::resume(std::uint64_t ticks) {
    const std::lock_guard lock(mutex_);
    if (!paused_.load(std::memory_order_relaxed)) return;
    windows_.back().end = ticks;
    paused_.store(false, std::memory_order_release);
}

bool PauseWindows::paused() const { return paused_.load(std::memory_order_acquire); }

bool PauseWindows::ever_paused() const {
    const std::lock_guard lock(mutex_);
    return !windows_.empty();
}

const PauseWindows::Window* PauseWindows::window_at(std::uint64_t ticks) const {
    for (auto it = windows_.rbegin(); it != windows_.rend(); ++it) {  // the newest first
        if (ticks >= it->end) return nullptr;
        if (ticks >= it->begin) return &*it;
    }
    return nullptr;
}

bool PauseWindows::contains(std::uint64_t ticks) const {
    const std::lock_guard lock(mutex_);
    return window_at(ticks) != nullptr;
}

bool PauseWindows::takes_callees(std::uint64_t ticks) const {
    const std::lock_guard lock(mutex_);
    const Window* window = window_at(ticks);
    return window != nullptr && window->callees == Callees::kLeftOut;
}

bool RecordFilter::leaves_out(const Record& record, std::int64_t ns, std::uint8_t flags) const {
    (void)ns;
    if (ignoring_ > 0 || (flags & kIgnoreSubtree) != 0) return true;
    if (rules_.pauses != nullptr && rules_.pauses->contains(record.ticks)) return true;
    if (rules_.sparse && (flags & kSparse) == 0) return true;
    return rules_.max_depth > 0 && kept_depth_ >= rules_.max_depth;
}

bool RecordFilter::unseen_left_out(const Record& exit, std::int64_t ns) const {
    // Inside a call this filter saw begin, an exception's exit with no start is a call
    // CPython never said began (PerfettoSequence::write_unseen_call): it took no time, and
    // is as deep as a call begun here. Outside any, it may be the end of a call begun
    // before the filter was made (a pause), which the encoder has open: it stays.
    if (exit.kind != EventKind::kExitByException || stack_.empty()) return false;
    return rules_.min_duration_ns > 0 || leaves_out(exit, ns, flags_of(exit));
}

std::uint8_t RecordFilter::flags_of(const Record& record) const {
    if (rules_.symbols == nullptr || !(rules_.sparse || rules_.symbols->any_flag(0xFF))) return 0;
    std::uint8_t flags = rules_.symbols->flags(record.symbol);
    if (flags == 0) return 0;
    FlagTimes& times = flag_times_[record.symbol];
    for (const SymbolFlag flag : {kIgnoreSubtree, kSparse}) {
        if ((flags & flag) == 0) continue;
        const std::size_t slot = flag == kIgnoreSubtree ? 0 : 1;
        if ((times.read & flag) == 0) {  // a flag's time never changes once it is set
            times.since[slot] = rules_.symbols->flagged_since(record.symbol, flag);
            times.read |= flag;
        }
        if (record.ticks < times.since[slot]) flags &= static_cast<std::uint8_t>(~flag);
    }
    return flags;
}

void RecordFilter::emit(const Record* records, std::size_t count, std::vector<Record>& out) {
    if (pending_ == 0) {
        out.insert(out.end(), records, records + count);
        return;
    }
    held_.insert(held_.end(), records, records + count);
    held_dropped_.resize(held_.size(), false);
}

// Pending calls old enough are kept, the outermost first (the older); what was held up
// to the first call still pending is let out.
void RecordFilter::promote(std::int64_t now_ns, std::vector<Record>& out) {
    if (pending_ == 0 && held_.empty()) return;
    std::size_t first_pending = held_base_ + held_.size();
    for (Entry& entry : stack_) {
        if (entry.state != State::kPending) continue;
        if (now_ns - entry.begin_ns < rules_.min_duration_ns) {
            first_pending = entry.held_at - entry.args_size;
            break;
        }
        entry.state = State::kKept;
        --pending_;
    }
    const std::size_t release = first_pending - held_base_;
    for (std::size_t i = 0; i < release; ++i) {
        if (!held_dropped_[i]) out.push_back(held_[i]);
    }
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(release));
    held_dropped_.erase(held_dropped_.begin(),
                        held_dropped_.begin() + static_cast<std::ptrdiff_t>(release));
    held_base_ += release;
}

void RecordFilter::drop_held(const Entry& entry) {
    for (std::size_t i = entry.held_at - entry.args_size; i <= entry.held_at; ++i) {
        held_dropped_[i - held_base_] = true;
    }
}

void RecordFilter::end_entry(const Entry& entry, const Record& exit, std::int64_t ns,
                             std::vector<Record>& out) {
    if (entry.ignores) --ignoring_;
    if (entry.state == State::kDropped) {
        args_.clear();  // what its end carries (an exception, a value) goes with it
        return;
    }
    --kept_depth_;
    if (entry.state == State::kPending) {
        --pending_;
        if (ns - entry.begin_ns < rules_.min_duration_ns) {  // too short: it and its args go
            drop_held(entry);
            args_.clear();
            if (pending_ == 0) promote(ns, out);
            return;
        }
        promote(ns, out);  // long enough: so are the calls around it, and all is let out
    }
    emit(args_.data(), args_.size(), out);
    args_.clear();
    emit(&exit, 1, out);
}

void RecordFilter::filter(std::span<const Record> in, const ToNs& to_ns, std::vector<Record>& out) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        const Record& record = in[i];
        const std::size_t raw = std::min(format::raw_records_after(record), in.size() - i - 1);
        if (record.kind == EventKind::kArgs) {
            args_.assign(in.begin() + static_cast<std::ptrdiff_t>(i),
                         in.begin() + static_cast<std::ptrdiff_t>(i + 1 + raw));
            i += raw;
            continue;
        }
        const std::int64_t ns = to_ns(record.ticks);
        if (rules_.min_duration_ns > 0) promote(ns, out);
        if (record.kind == EventKind::kEnter) {
            const std::uint8_t flags = flags_of(record);
            Entry entry{record.symbol, State::kKept, (flags & kIgnoreSubtree) != 0, ns, 0, 0};
            if (leaves_out(record, ns, flags)) {
                entry.state = State::kDropped;
                // Begun while paused: left out with all it calls, after a resume too
                // (but for --no-startup's window).
                if (rules_.pauses != nullptr && rules_.pauses->takes_callees(record.ticks)) {
                    entry.ignores = true;
                }
                args_.clear();
            } else {
                ++kept_depth_;
                if (rules_.min_duration_ns > 0) {
                    entry.state = State::kPending;
                    ++pending_;
                    entry.args_size = args_.size();
                    emit(args_.data(), args_.size(), out);
                    entry.held_at = held_base_ + held_.size();
                } else {
                    emit(args_.data(), args_.size(), out);
                }
                args_.clear();
                emit(&record, 1, out);
            }
            if (entry.ignores) ++ignoring_;
            stack_.push_back(entry);
            continue;
        }
        if (format::is_call_event(record.kind)) {
            std::size_t depth = stack_.size();
            while (depth > 0 && stack_[depth - 1].symbol != record.symbol) --depth;
            if (depth > 0 && ended_early_.late_exit(record.symbol, depth == stack_.size())) {
                depth = 0;  // the late exit of a call ended early: taken as that call's
            }
            if (depth == 0) {  // begun before this filter saw it: the encoder decides
                if (ended_early_.take(record.symbol) || unseen_left_out(record, ns)) {
                    args_.clear();
                    continue;
                }
                emit(args_.data(), args_.size(), out);
                args_.clear();
                emit(&record, 1, out);
                continue;
            }
            while (stack_.size() > depth) {  // calls left without their exit end with this one
                const Entry inner = stack_.back();
                stack_.pop_back();
                ended_early_.add(inner.symbol);
                Record end = record;
                end.symbol = inner.symbol;
                end.kind = EventKind::kExit;
                const std::vector<Record> saved = std::move(args_);
                args_.clear();
                end_entry(inner, end, ns, out);
                args_ = saved;
            }
            const Entry entry = stack_.back();
            stack_.pop_back();
            end_entry(entry, record, ns, out);
            continue;
        }
        // Instants, counters and slices on other tracks: left out while paused, or under
        // an ignored call.
        bool out_of_scope =
            ignoring_ > 0 || (rules_.pauses != nullptr && rules_.pauses->contains(record.ticks));
        // A slice on a track keeps its end as its beginning was kept, as a call does: an
        // asyncio task's step that paused lost its end and stayed open to the trace's end
        // (hunt AR). One whose beginning came before this filter was kept.
        if (record.kind == EventKind::kTrackEnter && raw > 0) {
            SymbolId track = 0;
            std::memcpy(&track, &in[i + 1], sizeof track);
            open_on_tracks_[track].push_back(!out_of_scope);
        } else if (record.kind == EventKind::kTrackExit) {
            const auto open = open_on_tracks_.find(record.symbol);
            out_of_scope = open != open_on_tracks_.end() && !open->second.back();
            if (open != open_on_tracks_.end()) {
                open->second.pop_back();
                if (open->second.empty()) open_on_tracks_.erase(open);
            }
        }
        if (!out_of_scope) {
            emit(args_.data(), args_.size(), out);
            emit(&record, 1 + raw, out);
        }
        args_.clear();
        i += raw;
    }
}

void RecordFilter::finish(std::int64_t end_ns, std::vector<Record>& out) {
    promote(end_ns, out);
    for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {  // too short even by the end
        if (it->state != State::kPending) continue;
        drop_held(*it);
        it->state = State::kDropped;
    }
    pending_ = 0;
    for (std::size_t i = 0; i < held_.size(); ++i) {
        if (!held_dropped_[i]) out.push_back(held_[i]);
    }
    held_base_ += held_.size();
    held_.clear();
    held_dropped_.clear();
}

void RecordFilter::cut(std::uint64_t cut_ticks) {
    if (held_.empty()) return;
    std::vector<Record> begins;
    for (Entry& entry : stack_) {
        if (entry.state != State::kPending) continue;
        Record begin = held_[entry.held_at - held_base_];
        begin.ticks = cut_ticks;
        entry.held_at = held_base_ + begins.size();
        entry.args_size = 0;  // given up with the rest
        begins.push_back(begin);
    }
    held_ = std::move(begins);
    held_dropped_.assign(held_.size(), false);
}

}  // namespace vztrace::tracer
