#include "tracer/trace_writer.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iterator>
#include <new>
#include <optional>
#include <utility>

#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/proto_wire.hpp"

namespace vztrace::tracer {
namespace {

// Perfetto asks for compressed packets under 512 KB; groups of packets this large
// compress to well under that.
constexpr std::size_t kCompressGroup = std::size_t{256} << 10;

std::int64_t boottime_offset_ns() {
    const std::int64_t before = TickClock::monotonic_ns();
    timespec boot{};
    clock_gettime(CLOCK_BOOTTIME, &boot);
    const std::int64_t after = TickClock::monotonic_ns();
    return std::int64_t{boot.tv_sec} * 1'000'000'000 + boot.tv_nsec -
           (before + (after - before) / 2);
}

// Length of the whole Trace.packet field at `at` (tag, size, bytes): the writer's own
// output, so well-formed.
std::size_t packet_field_size(const char* at) {
    std::size_t size = 0;
    std::size_t header = 1;
    int shift = 0;
    while (true) {
        const auto byte = static_cast<std::uint8_t>(at[header++]);
        size |= std::size_t{byte & 0x7FU} << shift;
        if ((byte & 0x80) == 0) break;
        shift += 7;
    }
    return header + size;
}

// Threads that ended while watched (watch_thread_end), newest first. Pushed by the C++
// runtime as a thread ends, when it holds no lock of vztrace's and maybe not the GIL
// (during a fork, or while the session finishes): a lock-free stack, nothing else.
struct EndedThread {
    ThreadBuffer* buffer;
    EndedThread* next;
};
std::atomic<EndedThread*> g_ended_threads{nullptr};

struct ThreadEndWatch {
    ThreadBuffer* buffer = nullptr;
    ~ThreadEndWatch() {
        if (buffer == nullptr) return;
        auto* ended = new (std::nothrow) EndedThread{buffer, nullptr};
        if (ended == nullptr) return;  // its chunk stays to the end, as before
        ended->next = g_ended_threads.load(std::memory_order_relaxed);
        while (!g_ended_threads.compare_exchange_weak(ended->next, ended, std::memory_order_release,
                                                      std::memory_order_relaxed)) {
        }
    }
};
thread_local ThreadEndWatch t_end_watch;

}  // namespace

TraceWriter::TraceWriter(ChunkPool& pool, const SymbolTable& symbols, OutputFile& file,
                         ClockAnchor start, std::int64_t pid, std::uint32_t process_sequence,
                         StreamOptions options)
    : pool_(pool),
      symbols_(symbols),
      file_(file),
      start_(start),
      source_(TickClock::source()),
      pid_(pid),
      process_sequence_(process_sequence),
      options_(options),
      boottime_offset_ns_(boottime_offset_ns()),
      trace_bytes_(options.trace_bytes != nullptr ? options.trace_bytes : &own_bytes_) {}

TraceWriter::~TraceWriter() {
    stop_thread();
    if (compressor_ != nullptr) libdeflate_free_compressor(compressor_);
}

void TraceWriter::thread_body(void* self) { static_cast<TraceWriter*>(self)->run(); }

void TraceWriter::allow_thread() {
    if (options_.ring) return;  // nothing is written before the end
    const std::lock_guard lock(mutex_);
    thread_allowed_ = true;
}

bool TraceWriter::start_thread_now() {
    const std::lock_guard start(start_mutex_);
    if (thread_.running()) return true;
    {
        const std::lock_guard lock(mutex_);
        if (!thread_allowed_) return false;
        stop_ = false;
    }
    return thread_.start(thread_body, this);
}

void TraceWriter::stop_thread() {
    const std::lock_guard start(start_mutex_);
    {
        const std::lock_guard lock(mutex_);
        thread_allowed_ = false;
        wind_down_ = false;
        if (!thread_.running()) return;
        stop_ = true;
    }
    changed_.notify_all();
    thread_.join_blocking();  // at most the chunk it is on; at once when it has wound down
    const std::lock_guard lock(mutex_);
    thread_done_ = false;
}

void TraceWriter::wind_down(ThreadBuffer* current) {
    if (options_.ring) return;  // nothing is written before the end
    {
        const std::lock_guard lock(mutex_);
        if (!thread_.running() || thread_done_) return;
    }
    if (current != nullptr) {
        try {
            if (Chunk* last = current->take_current()) hand_over(*current, last);
        } catch (const std::bad_alloc&) {
            memory_refused_.store(true, std::memory_order_relaxed);
        }
    }
    {
        const std::lock_guard lock(mutex_);
        wind_down_ = true;
    }
    changed_.notify_one();
}

bool TraceWriter::wound_down() const {
    const std::lock_guard lock(mutex_);
    return thread_done_;
}

void TraceWriter::run() {
    std::unique_lock lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] { return stop_ || !queue_.empty() || wind_down_; });
        if (stop_) return;     // what is queued stays queued
        if (queue_.empty()) {  // wound down: what is handed over from now on is written on the spot
            thread_done_ = true;
            return;
        }
        const Job job = queue_.front();
        queue_.pop_front();
        lock.unlock();
        process(job);
        lock.lock();
    }
}

namespace {

// The calls begun in `chunk` (its records other than those that follow an event).
std::uint64_t calls_begun(const Chunk& chunk) {
    std::uint64_t calls = 0;
    for (std::size_t i = 0; i < chunk.used; ++i) {
        const Record& record = chunk.records[i];
        if (record.kind == EventKind::kEnter) ++calls;
        if (!format::is_call_event(record.kind)) i += format::raw_records_after(record);
    }
    return calls;
}

}  // namespace

Chunk* TraceWriter::next_ring_chunk(std::size_t capacity) {
    bool refused = false;
    if (Chunk* fresh = pool_.try_take(capacity, &refused)) return fresh;
    // The system refused the ring's memory (a limit on the address space): the ring is
    // smaller than asked from here on, and the trace says so.
    if (refused) ring_refused_.store(true, std::memory_order_relaxed);
    const std::lock_guard lock(mutex_);
    if (queue_.empty()) return nullptr;
    // --tracer_entries: the oldest goes only if the newer chunks keep enough calls.
    if (options_.ring_calls > 0 && queued_calls_ - queue_.front().calls < options_.ring_calls) {
        return nullptr;
    }
    const Job oldest = queue_.front();
    queue_.pop_front();
    queued_calls_ -= oldest.calls;
    // What is given up still says which calls are open at the cut, up to the end if they
    // never end: the stack is followed through every chunk given up, one pass over its
    // records when the ring takes it back (ring mode only).
    // Under the recording controls, the stack is that of the calls they keep: the filter
    // sees what is given up too, so what it leaves out stays out after the cut.
    Cut& cut = cuts_[oldest.buffer];
    std::span<const Record> records(oldest.chunk->records, oldest.chunk->used);
    for (std::size_t i = 0; i < records.size(); i += 1 + format::raw_records_after(records[i])) {
        cut.last_ticks = records[i].ticks;  // the last event's time
    }
    if (RecordFilter* filter = records.empty() ? nullptr : filter_of(*oldest.buffer)) {
        const TickMapping mapping(start_, TickClock::anchor(), source_);
        given_up_.clear();
        filter->filter(
            records, [&mapping](std::uint64_t ticks) { return mapping.to_ns(ticks); }, given_up_);
        filter->cut(cut.last_ticks);
        records = given_up_;
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        const Record& record = records[i];
        if (record.kind == EventKind::kTrackEnter && i + 1 < records.size()) {
            SymbolId track = 0;
            std::memcpy(&track, &records[i + 1], sizeof track);
            cut.open_on_tracks.emplace_back(track, record.symbol);
        } else if (record.kind == EventKind::kTrackExit) {
            const auto match =
                std::find_if(cut.open_on_tracks.rbegin(), cut.open_on_tracks.rend(),
                             [&](const auto& open) { return open.first == record.symbol; });
            if (match != cut.open_on_tracks.rend())
                cut.open_on_tracks.erase(std::next(match).base());
        }
        if (!format::is_call_event(record.kind)) {
            i += format::raw_records_after(record);
        } else if (record.kind == EventKind::kEnter) {
            cut.open.push_back(record.symbol);
        } else if (const auto match = std::find(cut.open.rbegin(), cut.open.rend(), record.symbol);
                   match != cut.open.rend()) {
            cut.open.resize(static_cast<std::size_t>(cut.open.rend() - match) - 1);
        }  // else the end of a call begun before recording: none is open for it
    }
    counts_.overwritten += oldest.chunk->used;
    oldest.chunk->used = 0;
    if (const auto jobs = ring_jobs_.find(oldest.buffer);
        jobs != ring_jobs_.end() && --jobs->second == 0) {
        ring_jobs_.erase(jobs);
        retire_given_up(*oldest.buffer);
    }
    return oldest.chunk;
}

void TraceWriter::retire_given_up(ThreadBuffer& buffer) {
    if (!ring_exited_.contains(&buffer) || ring_jobs_.contains(&buffer)) return;
    if (const auto cut = cuts_.find(&buffer); cut != cuts_.end()) {
        // Its calls (and tasks' steps) open at the cut end at the end.
        if (!cut->second.open.empty() || !cut->second.open_on_tracks.empty()) return;
        cuts_.erase(cut);
    }
    ring_exited_.erase(&buffer);
    ring_not_recorded_ += buffer.not_recorded();
    buffer.retire();  // the last this writer does with it
}

void TraceWriter::hand_over(ThreadBuffer& buffer, Chunk* full, bool thread_ended, bool exited) {
    if (options_.ring) {
        const std::uint64_t calls = options_.ring_calls > 0 ? calls_begun(*full) : 0;
        const std::lock_guard lock(mutex_);
        queue_.push_back(Job{&buffer, full, calls, thread_ended});
        queued_calls_ += calls;
        ++ring_jobs_[&buffer];
        return;
    }
    if (full != nullptr) pool_.handed_over();
    const std::uint64_t exit_ticks = exited ? TickClock::now() : 0;
    bool running = false;
    bool allowed = false;
    {
        const std::lock_guard lock(mutex_);
        queue_.push_back(Job{&buffer, full, 0, thread_ended, exited, exit_ticks});
        running = thread_.running() && !thread_done_;
        allowed = thread_allowed_ && !thread_done_;
    }
    // The thread starts with the first full chunk: a short run never pays for it.
    if (!running && allowed) running = start_thread_now();
    if (running) {
        changed_.notify_one();
    } else {
        drain_here();  // no writer thread (os.fork() is under way): this one, in order
    }
}

void TraceWriter::thread_ends(ThreadBuffer& buffer) {
    hand_over_last(buffer);
    hand_over_ended_threads();
}

void TraceWriter::watch_thread_end(ThreadBuffer& buffer) { t_end_watch.buffer = &buffer; }

void TraceWriter::hand_over_ended_threads() {
    if (g_ended_threads.load(std::memory_order_relaxed) == nullptr) return;
    EndedThread* ended = g_ended_threads.exchange(nullptr, std::memory_order_acquire);
    while (ended != nullptr) {
        hand_over_last(*ended->buffer, true);
        delete std::exchange(ended, ended->next);
    }
}

void TraceWriter::forget_ended_threads() {
    t_end_watch.buffer = nullptr;
    EndedThread* ended = g_ended_threads.exchange(nullptr, std::memory_order_acquire);
    while (ended != nullptr) delete std::exchange(ended, ended->next);
}

void TraceWriter::hand_over_last(ThreadBuffer& buffer, bool exited) {
    try {
        // An empty one too: the sequence's names are freed by the writer, after its last
        // records (which may still be queued). A thread that has exited is retired after
        // them, with no chunk when it held none.
        Chunk* last = buffer.take_current();
        // The ring keeps what it holds, not the room the thread did not use.
        if (options_.ring && last != nullptr) last = pool_.shrink(last);
        const bool retires = exited && !options_.ring;
        if (last != nullptr || retires) hand_over(buffer, last, true, retires);
        if (exited && options_.ring) {
            // The ring retires it once it has given up every chunk of it.
            const std::lock_guard lock(mutex_);
            ring_exited_.insert(&buffer);
            retire_given_up(buffer);
        }
    } catch (const std::bad_alloc&) {
        memory_refused_.store(true, std::memory_order_relaxed);
    }
}

Chunk* TraceWriter::next_chunk_after(ThreadBuffer& buffer, Chunk* full) {
    // A ring gives up its oldest chunk whole: small chunks keep close to all of its size.
    const std::size_t capacity =
        options_.ring ? ChunkPool::kSmallRecords
                      : ChunkPool::next_capacity(full == nullptr ? 0 : full->capacity);
    if (options_.ring) {
        if (full != nullptr) hand_over(buffer, full);
        if (Chunk* next = next_ring_chunk(capacity)) return next;
        return pool_.take(capacity);  // nothing to take over yet: the limit gives way
    }
    if (full != nullptr) hand_over(buffer, full);
    if (capped_.load(std::memory_order_relaxed)) return nullptr;
    Chunk* next = pool_.take(capacity);
    if (next == nullptr) memory_refused_.store(true, std::memory_order_relaxed);
    return next;
}

// On the program's thread, inside a hook: nothing may unwind into CPython. Out of memory
// (a limit on the address space), the events that have no room are not recorded, and the
// trace says why.
Chunk* TraceWriter::chunk_full(ThreadBuffer& buffer, Chunk* full) {
    hand_over_ended_threads();
    try {
        return next_chunk_after(buffer, full);
    } catch (const std::bad_alloc&) {
        memory_refused_.store(true, std::memory_order_relaxed);
        return nullptr;
    }
}

void TraceWriter::drain_here() {
    while (true) {
        std::optional<Job> job;
        {
            const std::lock_guard lock(mutex_);
            if (queue_.empty()) return;
            job = queue_.front();
            queue_.pop_front();
        }
        process(*job);
    }
}

void TraceWriter::begin_sequence(ThreadBuffer& buffer, std::int64_t first_ns,
                                 const TickMapping& mapping) {
    // A ring cut this thread: its sequence begins at the cut, with the calls open there
    // begun, flagged, so that what follows nests under them.
    const auto cut = cuts_.find(&buffer);
    if (cut != cuts_.end()) first_ns = std::min(first_ns, mapping.to_ns(cut->second.last_ticks));
    format::PerfettoSequence& sequence = buffer.sequence();
    sequence.begin(first_ns, boottime_offset_ns_, out_);
    format::append_thread_descriptor(sequence.sequence_id(), sequence.track_uuid(),
                                     format::process_track_uuid(pid_), pid_,
                                     static_cast<std::int64_t>(buffer.tid()), buffer.name(), out_);
    if (cut == cuts_.end()) return;
    const auto symbols = [this](SymbolId id) { return symbol(id); };
    for (const SymbolId id : cut->second.open) sequence.begin_cut_call(id, first_ns, symbols, out_);
    for (const auto& [track, name] : cut->second.open_on_tracks) {
        sequence.begin_cut_track_slice(name, track, first_ns, symbols, out_);
    }
}

void TraceWriter::process(Job job) {
    try {
        encode_job(job);
    } catch (const std::bad_alloc&) {
        // The writer's thread, or the program's at its end: the trace cannot be written
        // whole, and no exception may end the process (std::terminate, SIGABRT).
        const std::lock_guard lock(encode_mutex_);
        fail_out_of_memory();
        if (job.chunk != nullptr) counts_.not_recorded += job.chunk->used;
    }
    if (job.chunk != nullptr) pool_.give_back(job.chunk);
}

void TraceWriter::fail_out_of_memory() {
    failed_ = true;
    failure_ = "out of memory (a limit on the address space?)";
}

void TraceWriter::encode_job(const Job& job) {
    const auto symbols = [this](SymbolId id) { return symbol(id); };
    {
        const std::lock_guard lock(encode_mutex_);
        Chunk* chunk = job.chunk;
        if (chunk == nullptr) {
            // A thread that exited holding no chunk: only its end follows.
        } else if (chunk->used > 0 && (counts_.size_cap_reached || failed_)) {
            counts_.not_recorded += chunk->used;
        } else if (chunk->used > 0) {
            format::PerfettoSequence& sequence = job.buffer->sequence();
            const TickMapping mapping(start_, TickClock::anchor(), source_);
            const auto to_ns = [&mapping](std::uint64_t ticks) { return mapping.to_ns(ticks); };
            out_.clear();
            if (!sequence.begun())
                begin_sequence(*job.buffer, to_ns(chunk->records[0].ticks), mapping);
            std::span<const Record> records(chunk->records, chunk->used);
            if (RecordFilter* filter = filter_of(*job.buffer)) {
                filtered_.clear();
                filter->filter(records, to_ns, filtered_);
                records = filtered_;
            }
            // Under a size cap, room for the chunk's largest encoding is reserved first in
            // the tree's count (a packet of the hot loop takes at most 32 bytes), so
            // processes writing at once never pass the cap together.
            const std::uint64_t bound = records.size() * 32;
            if (options_.max_size == 0) {
                sequence.encode(records, to_ns, symbols, out_);
                write_out();
            } else if (reserve(bound)) {
                sequence.encode(records, to_ns, symbols, out_);
                write_out(bound);
            } else {
                encode_up_to_cap(sequence, records, to_ns, symbols);
            }
        }
        if (job.thread_ended) job.buffer->sequence().forget_names();
        if (job.exited) retire(*job.buffer, job.exit_ticks);
    }
}

void TraceWriter::retire(ThreadBuffer& buffer, std::uint64_t exit_ticks) {
    const TickMapping mapping(start_, TickClock::anchor(), source_);
    out_.clear();
    end_sequence(buffer, mapping, mapping.to_ns(exit_ticks), retired_);
    // Under a size cap its end takes room as any packet does; without room it is left
    // out (its thread was described when its sequence began).
    const std::uint64_t bytes = out_.size();
    if (options_.max_size == 0) {
        write_out();
    } else if (bytes > 0 && reserve(bytes)) {
        write_out(bytes);
    } else {
        out_.clear();
    }
    buffer.retire();  // the last this writer does with it
}

void TraceWriter::end_sequence(ThreadBuffer& buffer, const TickMapping& mapping,
                               std::int64_t end_ns, SequenceTotals& totals) {
    format::PerfettoSequence& sequence = buffer.sequence();
    counts_.not_recorded += buffer.not_recorded();
    if (buffer.not_recorded() > 0 && memory_refused_.load(std::memory_order_relaxed) &&
        !counts_.size_cap_reached) {
        counts_.memory_refused = true;
    }
    // A thread the ring kept nothing of, in calls all along (blocked in one): they begin
    // at the cut and end with the others.
    if (const auto cut = cuts_.find(&buffer);
        !sequence.begun() && cut != cuts_.end() && !cut->second.open.empty()) {
        begin_sequence(buffer, mapping.to_ns(cut->second.last_ticks), mapping);
    }
    if (!sequence.begun()) return;
    if (RecordFilter* filter = buffer.filter().get()) {
        filtered_.clear();
        filter->finish(end_ns, filtered_);
        const auto to_ns = [&mapping](std::uint64_t ticks) { return mapping.to_ns(ticks); };
        const auto symbols = [this](SymbolId id) { return symbol(id); };
        if (!counts_.size_cap_reached) sequence.encode(filtered_, to_ns, symbols, out_);
    }
    // After the size cap, nothing later is known: close at the last event written.
    sequence.close_open_calls(counts_.size_cap_reached ? sequence.last_ns() : end_ns, out_);
    format::append_thread_descriptor(sequence.sequence_id(), sequence.track_uuid(),
                                     format::process_track_uuid(pid_), pid_,
                                     static_cast<std::int64_t>(buffer.tid()), buffer.name(), out_);
    totals.events += sequence.counts().events;
    totals.calls += sequence.counts().slices;
    totals.unfinished += sequence.counts().unfinished;
}

template <typename ToNs, typename Symbols>
void TraceWriter::encode_up_to_cap(format::PerfettoSequence& sequence,
                                   std::span<const Record> records, ToNs&& to_ns,
                                   Symbols&& symbols) {
    // Near the cap, piece by piece, each with its room reserved first and written at once:
    // the next piece's room counts the bytes this one took, not its bound (with
    // --compress a tenth of it). Kept to the end, the bounds stopped the recording at half
    // the cap, and at a twentieth with --compress.
    constexpr std::size_t kPiece = 1024;
    for (std::size_t at = 0, end = 0; at < records.size(); at = end) {
        // A piece ends between events, never inside one's raw records.
        const std::size_t want = std::min(at + kPiece, records.size());
        while (end < want) end += 1 + format::raw_records_after(records[end]);
        end = std::min(end, records.size());
        const auto piece = records.subspan(at, end - at);
        const std::uint64_t room = piece.size() * 32;
        if (!reserve(room)) {
            counts_.size_cap_reached = true;
            capped_.store(true);
            counts_.not_recorded += records.size() - at;
            break;
        }
        sequence.encode(piece, to_ns, symbols, out_);
        write_out(room);
    }
    write_out();  // the sequence's beginning, when no piece had room
}

RecordFilter* TraceWriter::filter_of(ThreadBuffer& buffer) {
    std::unique_ptr<RecordFilter>& filter = buffer.filter();
    if (filter == nullptr) {
        const FilterRules& rules = options_.filter;
        const bool needed = rules.max_depth > 0 || rules.min_duration_ns > 0 || rules.sparse ||
                            (rules.pauses != nullptr && rules.pauses->ever_paused()) ||
                            (rules.symbols != nullptr && rules.symbols->any_flag(0xFF));
        if (!needed) return nullptr;
        filter = std::make_unique<RecordFilter>(rules);
    }
    return filter.get();
}

bool TraceWriter::reserve(std::uint64_t bytes) {
    const std::uint64_t before = trace_bytes_->fetch_add(bytes);
    if (before + bytes <= options_.max_size) return true;
    trace_bytes_->fetch_sub(bytes);
    return false;
}

void TraceWriter::write_out(std::uint64_t reserved) {
    if (failed_ || out_.empty()) {
        trace_bytes_->fetch_sub(reserved);
        return;
    }
    bool ok = true;
    if (!options_.compress) {
        ok = file_.write(out_.view());
    } else {
        const char* at = out_.data();
        const char* end = at + out_.size();
        while (ok && at < end) {
            const char* group_end = at;
            while (group_end < end &&
                   group_end - at < static_cast<std::ptrdiff_t>(kCompressGroup)) {
                group_end += packet_field_size(group_end);
            }
            const auto raw = static_cast<std::size_t>(group_end - at);
            if (compressor_ == nullptr) compressor_ = libdeflate_alloc_compressor(1);
            const std::size_t bound =
                compressor_ == nullptr ? 0 : libdeflate_zlib_compress_bound(compressor_, raw);
            compressed_.resize(bound + 16);
            char* body = compressed_.data() + 16;  // room for the packet's header
            const std::size_t size =
                bound == 0 ? 0 : libdeflate_zlib_compress(compressor_, at, raw, body, bound);
            if (size == 0) {
                ok = false;
                break;
            }
            // Trace.packet { compressed_packets: bytes }
            char header[16];
            char* h = header;
            const std::size_t inner =
                2 + format::wire::varint_size(size) + size;  // tag 50: 2 bytes
            *h++ = static_cast<char>(
                format::wire::tag(format::perfetto::trace::kPacket, format::wire::kLength));
            h = format::wire::put_varint(h, inner);
            h = format::wire::put_varint(
                h, format::wire::tag(format::perfetto::packet::kCompressedPackets,
                                     format::wire::kLength));
            h = format::wire::put_varint(h, size);
            const auto header_size = static_cast<std::size_t>(h - header);
            std::memcpy(body - header_size, header, header_size);
            ok = file_.write(std::string_view(body - header_size, header_size + size));
            at = group_end;
        }
    }
    if (!ok) failed_ = true;
    // The tree's count gets what was written in place of what was reserved for it.
    trace_bytes_->fetch_add(file_.bytes_written() - counts_.bytes);
    trace_bytes_->fetch_sub(reserved);
    counts_.bytes = file_.bytes_written();
    out_.clear();
}

void TraceWriter::write_process_start(const std::string& process_name, const std::string& opening) {
    const std::lock_guard lock(encode_mutex_);
    out_.clear();
    if (!opening.empty()) {
        const std::pair<std::string, std::string> mark[] = {
            {std::string(format::kTraceOpening), opening}};
        format::append_metadata(process_sequence_, mark, out_);
    }
    const ClockAnchor now = TickClock::anchor();
    format::append_clock_snapshot(process_sequence_, now.monotonic_ns,
                                  now.monotonic_ns + boottime_offset_ns_,
                                  now.monotonic_ns + TickClock::realtime_offset_ns(), out_);
    format::append_process_descriptor(process_sequence_, format::process_track_uuid(pid_), pid_,
                                      process_name, {}, out_);
    write_out();
}

bool TraceWriter::finish(std::span<ThreadBuffer* const> buffers, std::uint64_t end_ticks,
                         const std::string& process_name, bool resumable) {
    try {
        return finish_writing(buffers, end_ticks, process_name, resumable);
    } catch (const std::bad_alloc&) {
        const std::lock_guard lock(encode_mutex_);
        fail_out_of_memory();
        return false;
    }
}

bool TraceWriter::finish_writing(std::span<ThreadBuffer* const> buffers, std::uint64_t end_ticks,
                                 const std::string& process_name, bool resumable) {
    stop_thread();
    for (ThreadBuffer* buffer : buffers) {
        if (buffer->retired()) continue;
        if (Chunk* last = buffer->take_current()) {
            pool_.handed_over();
            const std::lock_guard lock(mutex_);
            queue_.push_back(Job{buffer, last});
        }
    }
    drain_here();
    const std::lock_guard lock(encode_mutex_);
    resumable_.reset();
    if (resumable && !failed_) {
        // Everything recorded is written as it would be mid-run; what follows (the calls
        // still open ended, the descriptors) changes the state kept here.
        Resumable& kept = resumable_.emplace();
        kept.bytes = file_.bytes_written();
        kept.counts = counts_;
        {
            const std::lock_guard queue_lock(mutex_);
            kept.cuts = cuts_;
        }
        for (ThreadBuffer* buffer : buffers) {
            if (buffer->retired()) continue;
            const std::unique_ptr<RecordFilter>& filter = buffer->filter();
            kept.threads.push_back({buffer, buffer->sequence(),
                                    filter ? std::make_unique<RecordFilter>(*filter) : nullptr});
        }
    }
    const TickMapping mapping(start_, TickClock::anchor(), source_);
    const std::int64_t end_ns = mapping.to_ns(end_ticks);
    out_.clear();
    if (stopped_for_memory_.load(std::memory_order_relaxed) ||
        ring_refused_.load(std::memory_order_relaxed)) {
        counts_.memory_refused = true;
    }
    {
        const std::lock_guard queue_lock(mutex_);
        counts_.not_recorded += std::exchange(ring_not_recorded_, 0);
    }
    SequenceTotals totals = retired_;
    for (ThreadBuffer* buffer : buffers) {
        if (!buffer->retired()) end_sequence(*buffer, mapping, end_ns, totals);
    }
    counts_.events = totals.events;
    counts_.calls = totals.calls;
    counts_.unfinished = totals.unfinished;
    format::append_process_descriptor(process_sequence_, format::process_track_uuid(pid_), pid_,
                                      process_name, {}, out_);
    write_out();
    return !failed_;
}

bool TraceWriter::resume() {
    {
        const std::lock_guard lock(encode_mutex_);
        if (!resumable_ || failed_) return false;
        if (!file_.reopen_at(resumable_->bytes)) {
            failed_ = !file_.ok();
            return false;
        }
        Resumable kept = std::move(*resumable_);
        resumable_.reset();
        trace_bytes_->fetch_sub(counts_.bytes - kept.bytes);
        counts_ = kept.counts;
        for (auto& thread : kept.threads) {
            thread.buffer->sequence() = std::move(thread.sequence);
            thread.buffer->filter() = std::move(thread.filter);
        }
        const std::lock_guard queue_lock(mutex_);
        cuts_ = std::move(kept.cuts);
    }
    allow_thread();
    return true;
}

StreamCounts TraceWriter::counts() const {
    const std::lock_guard lock(encode_mutex_);
    return counts_;
}

bool TraceWriter::failed() const {
    const std::lock_guard lock(encode_mutex_);
    return failed_;
}

std::string TraceWriter::error() const {
    if (!file_.error().empty()) return file_.error();
    if (failure_ != nullptr) return std::string("cannot write the trace: ") + failure_;
    return "cannot compress the trace (out of memory)";
}

}  // namespace vztrace::tracer
