// RecordFilter: what the recording controls leave out, decided in the writer, on one
// thread's records before they are encoded, so the hooks pay nothing for them: calls
// deeper than --max-stack-depth, shorter than --min-duration, begun while the recording
// was paused (vztrace.pause(), --no-startup), the calls of an @vztrace.ignore function and
// everything under them, and under --log-sparse every call not marked @vztrace.sparse.
// A call left out never breaks the nesting of those kept: its exit goes with it, and the
// calls it made nest under the nearest call kept. No Python.h.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tracer/format/ended_early.hpp"
#include "tracer/format/record.hpp"
#include "tracer/symbol_table.hpp"

namespace vztrace::tracer {

using format::Record;

// The times the recording was paused, process-wide: [start, end) in ticks; an open
// window ends at UINT64_MAX until resume().
class PauseWindows {
 public:
    // What becomes of the calls made after the resume by a call begun while paused:
    // vztrace.pause() leaves them out with it; --no-startup's window (the interpreter's
    // start-up) keeps them, since it records from the program's first line on (a thread
    // that start-up started lost all its calls).
    enum class Callees : std::uint8_t { kLeftOut, kKept };
    void pause(std::uint64_t ticks, Callees callees = Callees::kLeftOut);
    void resume(std::uint64_t ticks);
    bool paused() const;
    bool ever_paused() const;
    bool contains(std::uint64_t ticks) const;
    // Whether `ticks` is in a window whose calls take their callees with them.
    bool takes_callees(std::uint64_t ticks) const;

 private:
    struct Window {
        std::uint64_t begin;
        std::uint64_t end;
        Callees callees;
    };
    const Window* window_at(std::uint64_t ticks) const;  // under mutex_

    mutable std::mutex mutex_;
    std::vector<Window> windows_;
    std::atomic<bool> paused_{false};  // written under mutex_; read without it
};

struct FilterRules {
    std::uint32_t max_depth = 0;       // 0: no limit
    std::int64_t min_duration_ns = 0;  // 0: no limit
    bool sparse = false;               // only kSparse symbols
    const SymbolTable* symbols = nullptr;
    const PauseWindows* pauses = nullptr;
};

class RecordFilter {
 public:
    using ToNs = std::function<std::int64_t(std::uint64_t)>;

    explicit RecordFilter(FilterRules rules) : rules_(rules) {}

    // Appends the records of `in` that are kept to `out`, in order. Records that wait on
    // --min-duration (a call not yet known to be long enough, and what follows it) are
    // held back until it is decided.
    void filter(std::span<const Record> in, const ToNs& to_ns, std::vector<Record>& out);

    // The end of the recording at `end_ns`: held calls still open are kept if they were
    // long enough by then, and what was held is let out.
    void finish(std::int64_t end_ns, std::vector<Record>& out);

    // A ring gave up every record filtered so far (the newest at `cut_ticks`): what is held
    // goes with them, but for the begins of the calls still pending, which begin at the cut
    // if they prove long enough (as the calls kept open there do).
    void cut(std::uint64_t cut_ticks);

 private:
    enum class State : std::uint8_t { kKept, kDropped, kPending };
    struct Entry {
        format::SymbolId symbol;
        State state;
        bool ignores;  // an @vztrace.ignore call: everything under it is left out
        std::int64_t begin_ns;
        std::size_t held_at;    // pending: where its begin is in held_ (absolute index)
        std::size_t args_size;  // pending: records of its arguments just before
    };

    bool leaves_out(const Record& record, std::int64_t ns, std::uint8_t flags) const;
    // Whether an exit that matches no call on the stack is of a call left out here.
    bool unseen_left_out(const Record& exit, std::int64_t ns) const;
    // The flags (kIgnoreSubtree, kSparse) the record's symbol had when it was recorded,
    // when any rule reads them; else 0.
    std::uint8_t flags_of(const Record& record) const;
    void emit(const Record* records, std::size_t count, std::vector<Record>& out);
    void promote(std::int64_t now_ns, std::vector<Record>& out);
    // Marks the held enter of a pending `entry` and its arguments as left out.
    void drop_held(const Entry& entry);
    void end_entry(const Entry& entry, const Record& exit, std::int64_t ns,
                   std::vector<Record>& out);

    FilterRules rules_;
    std::vector<Entry> stack_;
    // Calls ended here with an outer call's exit: their own exits, which a thread whose
    // stacks switch (greenlets) sends later, are not passed on (see ended_early.hpp).
    format::EndedEarly ended_early_;
    std::uint32_t kept_depth_ = 0;
    std::uint32_t ignoring_ = 0;  // ignored calls open
    std::size_t pending_ = 0;     // pending entries on the stack
    // Held records (--min-duration), with those dropped since marked; held_base_ is the
    // absolute index of held_[0].
    std::vector<Record> held_;
    std::vector<bool> held_dropped_;
    std::size_t held_base_ = 0;
    // Slices open on other tracks (kTrackEnter), by track: whether each was kept.
    std::unordered_map<format::SymbolId, std::vector<bool>> open_on_tracks_;
    // A kArgs record and its raw records, waiting for the event they belong to.
    std::vector<Record> args_;
    // When flagged symbols got their flags (SymbolTable::flagged_since), read once each.
    struct FlagTimes {
        std::uint8_t read = 0;  // the flags whose time is read
        std::array<std::uint64_t, 2> since{};
    };
    mutable std::unordered_map<format::SymbolId, FlagTimes> flag_times_;
};

}  // namespace vztrace::tracer
