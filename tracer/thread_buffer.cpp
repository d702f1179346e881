#include "tracer/thread_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace vztrace::tracer {

bool ThreadBuffer::next_chunk() {
    if (chunk_ != nullptr && chunk_->unpopulated > 0) {  // the rest of this one first
        populate_step(*chunk_);
        end_ = chunk_->populated_end();
        return true;
    }
    if (chunk_ != nullptr) chunk_->used = static_cast<std::size_t>(next_ - chunk_->records);
    chunk_ = sink_.chunk_full(*this, chunk_);
    if (chunk_ == nullptr) {
        next_ = end_ = nullptr;
        return false;
    }
    next_ = chunk_->records;
    end_ = chunk_->populated_end();
    return true;
}

void ThreadBuffer::append_slow(Record record) {
    if (!next_chunk()) {
        ++not_recorded_;
        return;
    }
    *next_++ = record;
}

void ThreadBuffer::append_with_raw(std::uint64_t ticks, SymbolId symbol, EventKind kind,
                                   const void* raw, std::size_t raw_bytes) {
    raw_bytes = std::min(raw_bytes, kMaxRawBytes);
    const std::size_t raw_records = format::raw_records_for(raw_bytes);
    const std::size_t needed = 1 + raw_records;
    if (static_cast<std::size_t>(end_ - next_) < needed || next_ == nullptr) {
        // A chunk holds at least 4096 records, and its next populated step as many: a
        // fresh one, or the rest of this one, always has room.
        if (!next_chunk() || static_cast<std::size_t>(end_ - next_) < needed) {
            ++not_recorded_;
            return;
        }
    }
    *next_++ = Record{ticks, symbol, kind};
    std::memset(static_cast<void*>(next_), 0, raw_records * sizeof(Record));
    if (raw_bytes > 0) std::memcpy(static_cast<void*>(next_), raw, raw_bytes);
    next_ += raw_records;
}

bool ThreadBuffer::take_back_last(const Record& record) {
    if (chunk_ == nullptr || next_ == chunk_->records) return false;
    const Record& last = next_[-1];
    if (last.ticks != record.ticks || last.symbol != record.symbol || last.kind != record.kind) {
        return false;
    }
    --next_;
    return true;
}

Chunk* ThreadBuffer::take_current() {
    Chunk* chunk = chunk_;
    if (chunk != nullptr) chunk->used = static_cast<std::size_t>(next_ - chunk->records);
    chunk_ = nullptr;
    next_ = end_ = nullptr;
    return chunk;
}

void ThreadBuffer::set_name(std::string name) {
    const std::lock_guard lock(name_mutex_);
    name_ = std::move(name);
}

std::string ThreadBuffer::name() const {
    const std::lock_guard lock(name_mutex_);
    return name_;
}

}  // namespace vztrace::tracer
