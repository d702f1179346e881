// ThreadBuffer: the event records of one thread, written into the chunk it holds.
// Appending is one compare and one 16-byte store; a full chunk takes the out-of-line
// slow path, which hands it to the ChunkSink (the writer) and takes the next.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "tracer/chunk_pool.hpp"
#include "tracer/compiler.hpp"
#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/record.hpp"
#include "tracer/record_filter.hpp"

namespace vztrace::tracer {

using format::EventKind;
using format::Record;
using format::SymbolId;

class ThreadBuffer;

// Where full chunks go. Returns the chunk to record into next, or null when recording
// has stopped (the event is then counted as not recorded).
class ChunkSink {
 public:
    virtual Chunk* chunk_full(ThreadBuffer& buffer, Chunk* full) = 0;

 protected:
    ~ChunkSink() = default;
};

class ThreadBuffer {
 public:
    ThreadBuffer(ChunkSink& sink, std::uint64_t tid, std::uint32_t sequence_id,
                 std::uint64_t track_uuid, std::uint64_t process_uuid = 0)
        : sink_(sink), tid_(tid), sequence_(sequence_id, track_uuid, process_uuid) {}
    ThreadBuffer(const ThreadBuffer&) = delete;
    ThreadBuffer& operator=(const ThreadBuffer&) = delete;

    VZ_ALWAYS_INLINE void append(std::uint64_t ticks, SymbolId symbol, EventKind kind) {
        if (VZ_LIKELY(next_ != end_)) {
            *next_++ = Record{ticks, symbol, kind};
            return;
        }
        append_slow(Record{ticks, symbol, kind});
    }

    // An event with `raw_bytes` of data after it in raw records (kArgs, kCounter,
    // kTrackEnter), never split across chunks. At most kMaxRawBytes.
    void append_with_raw(std::uint64_t ticks, SymbolId symbol, EventKind kind, const void* raw,
                         std::size_t raw_bytes);
    static constexpr std::size_t kMaxRawBytes = 16 * 1024;

    // Takes back the last record appended when it is `record` and still in the chunk being
    // filled (a full chunk is handed over only at the next append): true if it was.
    bool take_back_last(const Record& record);

    // The chunk being filled, with its records so far; the buffer holds none after.
    Chunk* take_current();

    std::uint64_t tid() const { return tid_; }
    std::uint64_t not_recorded() const { return not_recorded_; }
    void add_not_recorded(std::uint64_t count) { not_recorded_ += count; }

    // The thread's name as the program knows it (threading.Thread.name); set while the
    // GIL is held, read by the writer.
    void set_name(std::string name);
    std::string name() const;

    // The thread's packet sequence: used by whoever encodes its chunks (one at a time).
    format::PerfettoSequence& sequence() { return sequence_; }
    // The recording controls' filter of this thread's records, once the writer needs one.
    std::unique_ptr<RecordFilter>& filter() { return filter_; }

    // The thread has exited and the writer has ended its sequence: nothing refers to this
    // buffer any more but the session's list, which frees it (Session::attach_locked).
    void retire() { retired_.store(true, std::memory_order_release); }
    bool retired() const { return retired_.load(std::memory_order_acquire); }

 private:
    [[gnu::noinline]] void append_slow(Record record);
    // Populates the next step of the chunk's rest (Chunk::unpopulated), or, once it is
    // full, hands it over and takes the next; false when recording has stopped.
    bool next_chunk();

    Record* next_ = nullptr;
    Record* end_ = nullptr;
    Chunk* chunk_ = nullptr;
    ChunkSink& sink_;
    std::uint64_t tid_;
    std::uint64_t not_recorded_ = 0;
    mutable std::mutex name_mutex_;
    std::string name_;
    format::PerfettoSequence sequence_;
    std::unique_ptr<RecordFilter> filter_;
    std::atomic<bool> retired_{false};
};

}  // namespace vztrace::tracer
