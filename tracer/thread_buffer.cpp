#include "tracer/thread_buffer.hpp"

namespace vztrace::tracer {

void ThreadBuffer::append_slow(Record record) {
    if (chunk_ != nullptr) chunk_->used = static_cast<std::size_t>(next_ - chunk_->records);
    chunk_ = sink_.chunk_full(*this, chunk_);
    if (chunk_ == nullptr) {
        next_ = end_ = nullptr;
        ++not_recorded_;
        return;
    }
    next_ = chunk_->records;
    end_ = next_ + chunk_->capacity;
    *next_++ = record;
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
