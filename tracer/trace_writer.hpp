// TraceWriter: streams one process's recording to its trace file while the program runs.
// Full chunks come from the threads (ChunkSink); a hidden thread of vztrace's encodes
// them as Perfetto packets, appends them to the file and gives the chunk back to the
// pool. Memory is the pool's limit, whatever the length of the run; when the disk is
// slower than the program, the program waits for a chunk instead of losing events.
//
// While the thread is stopped (around os.fork()), a thread whose chunk fills encodes the
// queue itself, in order. No Python.h.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tracer/chunk_pool.hpp"
#include "tracer/clock.hpp"
#include "tracer/format/byte_buffer.hpp"
#include "tracer/hidden_thread.hpp"
#include "tracer/output_file.hpp"
#include "tracer/record_filter.hpp"
#include "tracer/symbol_table.hpp"
#include "tracer/thread_buffer.hpp"

struct libdeflate_compressor;

namespace vztrace::tracer {

struct StreamOptions {
    bool compress = false;       // Perfetto compressed_packets (zlib deflate)
    std::uint64_t max_size = 0;  // bytes of trace file, then recording stops; 0: no cap
    // The bytes of the whole trace (every process of the tree adds its own), which
    // max_size caps; null: this writer's alone.
    std::atomic<std::uint64_t>* trace_bytes = nullptr;
    // Ring mode (a flight recorder): the pool's chunks are kept, not written, and the
    // oldest is taken over when the pool is full; everything is written at the end.
    bool ring = false;
    // --tracer_entries: the oldest chunk is taken over only while the newer ones hold at
    // least this many calls; until then the ring grows.
    std::uint64_t ring_calls = 0;
    // The recording controls applied to every thread's records (record_filter.hpp).
    FilterRules filter;
};

// What a process's stream holds, for the summary and the metadata.
struct StreamCounts {
    std::uint64_t events = 0;
    std::uint64_t calls = 0;
    std::uint64_t unfinished = 0;
    std::uint64_t not_recorded = 0;  // events after --max-size, or refused memory
    std::uint64_t overwritten = 0;   // ring mode: older events given up for newer ones
    std::uint64_t bytes = 0;
    bool size_cap_reached = false;
    // The system refused memory for a chunk of records (mmap failed: a limit on the
    // address space): the events that had no room were not recorded. Or it refused memory
    // inside a callback, and the recording stopped there.
    bool memory_refused = false;
};

class TraceWriter final : public ChunkSink {
 public:
    TraceWriter(ChunkPool& pool, const SymbolTable& symbols, OutputFile& file, ClockAnchor start,
                std::int64_t pid, std::uint32_t process_sequence, StreamOptions options);
    ~TraceWriter();
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    Chunk* chunk_full(ThreadBuffer& buffer, Chunk* full) override;

    // The calling thread, `buffer`'s, has ended (the program's function of it returned):
    // what it recorded goes to the writer now, its chunk back to the pool, and its
    // sequence's table of names is freed once encoded, so threads that ended hold next to
    // no memory (a program starting a thread per request).
    void thread_ends(ThreadBuffer& buffer);

    // A thread that C code started, rather than threading or _thread, ends without a word
    // to vztrace, and its last chunk (64 KiB and more) stayed to the end: a program whose C
    // library starts a thread per callback grew by that much a thread. watch_thread_end()
    // (on the thread, once it has `buffer`) has the C++ runtime note the thread's exit; the
    // next thread that fills a chunk, starts or ends (holding the GIL) then does for it
    // what thread_ends() does. Once a thread has exited (also one that called
    // thread_ends()), the writer ends its sequence there and retires its buffer (outside
    // ring mode, which writes nothing before the end): a program that starts thread after
    // thread keeps vztrace's memory flat.
    static void watch_thread_end(ThreadBuffer& buffer);
    void hand_over_ended_threads();
    // In a forked child: the parent's threads are not its own.
    static void forget_ended_threads();

    // The packets that open the process's stream: the clock snapshot, its descriptor, and
    // for the root's Perfetto trace the trace's opening mark, format::kTraceOpening with
    // `opening` as its value (its metadata at the end closes it).
    void write_process_start(const std::string& process_name, const std::string& opening = {});

    // The writer thread: allowed once recording starts, and started by the first full
    // chunk (a short run never has one); stopped and not allowed around os.fork().
    void allow_thread();
    void stop_thread();
    // The recording has stopped, and finish() comes later (a root's, after python's
    // finalization): `current`'s chunk (the calling thread's buffer, or null) goes to the
    // writer thread now, which encodes what is queued meanwhile and then ends, so that
    // finish() has little left to write and no thread to wake. A short run (no writer
    // thread) leaves it all to finish(); what is handed over later is written on the spot.
    void wind_down(ThreadBuffer* current);
    // Whether the thread has ended after wind_down() (what comes is written on the spot).
    bool wound_down() const;
    bool thread_running() const { return thread_.running(); }
    // Whether --max-size has stopped the recording.
    bool capped() const { return capped_.load(std::memory_order_relaxed); }

    // Ends the stream: every queued chunk and each buffer's last one encoded, calls still
    // open ended at `end_ticks` and flagged, the final names of the threads and of the
    // process. The thread is stopped. False when writing failed (error() says why).
    // `resumable` (the process is about to exec, which may fail): what it takes to go on
    // is kept, for resume().
    bool finish(std::span<ThreadBuffer* const> buffers, std::uint64_t end_ticks,
                const std::string& process_name, bool resumable = false);

    // The exec that a resumable finish() came before failed: the stream is taken back as
    // it was before its end was written, and the recording goes on. False (nothing
    // changed but what error() says) when it cannot.
    bool resume();

    // The recording stopped early: the system refused memory inside a callback.
    void stop_for_memory() { stopped_for_memory_.store(true, std::memory_order_relaxed); }

    StreamCounts counts() const;
    bool failed() const;
    std::string error() const;

 private:
    struct Job {
        ThreadBuffer* buffer;
        Chunk* chunk;                  // null for a thread that exited holding none
        std::uint64_t calls = 0;       // ring_calls: the calls begun in it
        bool thread_ended = false;     // the buffer's last: its sequence forgets its names
        bool exited = false;           // the thread has exited: the buffer is retired after
        std::uint64_t exit_ticks = 0;  // when its exit was noticed
    };
    void hand_over(ThreadBuffer& buffer, Chunk* full, bool thread_ended = false,
                   bool exited = false);
    // thread_ends() of any thread's buffer; `exited`: the thread is gone (its end watch).
    void hand_over_last(ThreadBuffer& buffer, bool exited = false);
    static void thread_body(void* self);
    void run();
    // Encodes and writes one chunk, then gives it back to the pool.
    void process(Job job);
    void encode_job(const Job& job);
    bool finish_writing(std::span<ThreadBuffer* const> buffers, std::uint64_t end_ticks,
                        const std::string& process_name, bool resumable);
    Chunk* next_chunk_after(ThreadBuffer& buffer, Chunk* full);
    void fail_out_of_memory();  // under encode_mutex_
    void drain_here();          // processes the queue on the calling thread
    bool start_thread_now();    // false when not allowed or not started
    // Ring mode: the chunk to fill next, the oldest kept one when the pool is full.
    Chunk* next_ring_chunk(std::size_t capacity);
    // The buffer's filter, made when the recording controls first need one.
    RecordFilter* filter_of(ThreadBuffer& buffer);
    void begin_sequence(ThreadBuffer& buffer, std::int64_t first_ns, const TickMapping& mapping);
    // What a thread's sequence ends with, into out_ (under encode_mutex_): what its filter
    // still holds, its calls still open ended at `end_ns` and flagged, its thread's
    // descriptor with its final name. Its counts go to counts_ and `totals`.
    struct SequenceTotals {
        std::uint64_t events = 0;
        std::uint64_t calls = 0;
        std::uint64_t unfinished = 0;
    };
    void end_sequence(ThreadBuffer& buffer, const TickMapping& mapping, std::int64_t end_ns,
                      SequenceTotals& totals);
    // A thread that has exited: its sequence ended where its exit was noticed, written, and
    // its buffer retired (under encode_mutex_).
    void retire(ThreadBuffer& buffer, std::uint64_t exit_ticks);
    // Ring mode, under mutex_: a buffer whose thread has exited and whose every chunk the
    // ring has given up (no call of it open at the cut) is retired; nothing of it is left
    // to write.
    void retire_given_up(ThreadBuffer& buffer);
    template <typename ToNs, typename Symbols>
    void encode_up_to_cap(format::PerfettoSequence& sequence, std::span<const Record> records,
                          ToNs&& to_ns, Symbols&& symbols);
    // out_ to the file (compressed when asked), unless failed. `reserved`: the room taken
    // for it under the size cap, given back for what was written.
    void write_out(std::uint64_t reserved = 0);
    // Takes `bytes` of room under the size cap in the trace's count; false if it is full.
    bool reserve(std::uint64_t bytes);
    format::SymbolInfo symbol(SymbolId id) const { return symbols_.info(id); }

    ChunkPool& pool_;
    const SymbolTable& symbols_;
    OutputFile& file_;
    const ClockAnchor start_;
    const ClockSource source_;
    const std::int64_t pid_;
    const std::uint32_t process_sequence_;
    const StreamOptions options_;
    const std::int64_t boottime_offset_ns_;
    std::atomic<std::uint64_t> own_bytes_{0};  // the count when no tree shares one
    std::atomic<std::uint64_t>* trace_bytes_;  // bytes of the whole trace, and reservations

    mutable std::mutex mutex_;  // the queue and the flags
    std::condition_variable changed_;
    std::deque<Job> queue_;
    std::uint64_t queued_calls_ = 0;  // ring_calls: the calls begun in queue_'s chunks
    bool stop_ = false;
    bool thread_allowed_ = false;
    bool wind_down_ = false;           // the thread ends once the queue is empty (wind_down)
    bool thread_done_ = false;         // it has: it runs no more jobs, and is still to be joined
    std::mutex start_mutex_;           // one starter or stopper of the thread at a time
    std::atomic<bool> capped_{false};  // the size cap was reached: recording has stopped
    std::atomic<bool> memory_refused_{false};  // a chunk could not be mapped
    std::atomic<bool> stopped_for_memory_{false};
    std::atomic<bool> ring_refused_{false};  // the ring's memory refused: it is smaller
    struct Cut {
        std::uint64_t last_ticks = 0;  // the newest record given up
        std::vector<SymbolId> open;    // calls open at the cut, outermost first
                                       // (followed through the records given up)
        // Slices open at the cut on tracks of their own (asyncio tasks' steps): the track's
        // name and the slice's.
        std::vector<std::pair<SymbolId, SymbolId>> open_on_tracks;
    };
    std::unordered_map<ThreadBuffer*, Cut> cuts_;  // ring mode; under mutex_
    // Ring mode, under mutex_: the chunks of each buffer in the queue, the buffers whose
    // threads have exited, and what those the ring retired did not record.
    std::unordered_map<ThreadBuffer*, std::size_t> ring_jobs_;
    std::unordered_set<ThreadBuffer*> ring_exited_;
    std::uint64_t ring_not_recorded_ = 0;
    std::vector<Record> given_up_;  // what the filter kept of a chunk given up; under mutex_

    // What a resumable finish() changes, as it was before (see resume()).
    struct Resumable {
        std::uint64_t bytes = 0;  // the stream's size before its end was written
        StreamCounts counts;
        std::unordered_map<ThreadBuffer*, Cut> cuts;
        struct Thread {
            ThreadBuffer* buffer;
            format::PerfettoSequence sequence;
            std::unique_ptr<RecordFilter> filter;
        };
        std::vector<Thread> threads;
    };
    std::optional<Resumable> resumable_;  // under encode_mutex_

    mutable std::mutex encode_mutex_;  // one encoder at a time: sequences and out_
    format::ByteBuffer out_;
    std::vector<Record> filtered_;  // a chunk's records the filter kept
    std::string compressed_;
    libdeflate_compressor* compressor_ = nullptr;  // made at the first compressed write
    StreamCounts counts_;
    SequenceTotals retired_;  // the sequences of the threads retired so far
    bool failed_ = false;
    // Why, when not the file's error: a constant, as it is set when memory is short.
    const char* failure_ = nullptr;

    HiddenThread thread_;
};

}  // namespace vztrace::tracer
