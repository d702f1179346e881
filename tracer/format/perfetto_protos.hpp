// Field numbers of the Perfetto trace protos vztrace writes and reads, as published in
// Perfetto's protos/perfetto/trace/ (trace.proto, trace_packet.proto, clock_snapshot.proto,
// track_event/track_event.proto, track_descriptor.proto, process_descriptor.proto,
// thread_descriptor.proto, interned_data/interned_data.proto, debug_annotation.proto,
// source_location.proto). tests/perfetto/vztrace_trace.proto restates them for protoc.
#pragma once

#include <cstdint>

namespace vztrace::format::perfetto {

namespace trace {
inline constexpr std::uint32_t kPacket = 1;
}

namespace packet {
inline constexpr std::uint32_t kChromeEvents = 5;
inline constexpr std::uint32_t kClockSnapshot = 6;
inline constexpr std::uint32_t kTimestamp = 8;
inline constexpr std::uint32_t kTrustedPacketSequenceId = 10;
inline constexpr std::uint32_t kTrackEvent = 11;
inline constexpr std::uint32_t kInternedData = 12;
inline constexpr std::uint32_t kSequenceFlags = 13;
inline constexpr std::uint32_t kIncrementalStateCleared = 41;
inline constexpr std::uint32_t kPreviousPacketDropped = 42;
inline constexpr std::uint32_t kCompressedPackets = 50;
inline constexpr std::uint32_t kTimestampClockId = 58;
inline constexpr std::uint32_t kTracePacketDefaults = 59;
inline constexpr std::uint32_t kTrackDescriptor = 60;
inline constexpr std::uint32_t kFirstPacketOnSequence = 87;
inline constexpr std::uint32_t kTraceAttributes = 126;
// sequence_flags values
inline constexpr std::uint32_t kSeqIncrementalStateCleared = 1;
inline constexpr std::uint32_t kSeqNeedsIncrementalState = 2;
}  // namespace packet

namespace defaults {  // TracePacketDefaults
inline constexpr std::uint32_t kTrackEventDefaults = 11;
inline constexpr std::uint32_t kTimestampClockId = 58;
}  // namespace defaults

namespace track_event_defaults {
inline constexpr std::uint32_t kTrackUuid = 11;
}

namespace clock_snapshot {
inline constexpr std::uint32_t kClocks = 1;
inline constexpr std::uint32_t kPrimaryTraceClock = 2;
}  // namespace clock_snapshot

namespace clock {  // ClockSnapshot.Clock
inline constexpr std::uint32_t kClockId = 1;
inline constexpr std::uint32_t kTimestamp = 2;
inline constexpr std::uint32_t kIsIncremental = 3;
inline constexpr std::uint32_t kUnitMultiplierNs = 4;
// BuiltinClock values
inline constexpr std::uint32_t kRealtime = 1;
inline constexpr std::uint32_t kMonotonic = 3;
inline constexpr std::uint32_t kBoottime = 6;
// Clock ids 64..127 are scoped to the packet sequence that defines them.
inline constexpr std::uint32_t kFirstSequenceScoped = 64;
}  // namespace clock

namespace track_event {
inline constexpr std::uint32_t kCategoryIids = 3;
inline constexpr std::uint32_t kDebugAnnotations = 4;
inline constexpr std::uint32_t kType = 9;
inline constexpr std::uint32_t kNameIid = 10;
inline constexpr std::uint32_t kTrackUuid = 11;
inline constexpr std::uint32_t kCategories = 22;
inline constexpr std::uint32_t kName = 23;
inline constexpr std::uint32_t kSourceLocation = 33;
inline constexpr std::uint32_t kSourceLocationIid = 34;
inline constexpr std::uint32_t kCounterValue = 30;
inline constexpr std::uint32_t kDoubleCounterValue = 44;
// Type values
inline constexpr std::uint32_t kSliceBegin = 1;
inline constexpr std::uint32_t kSliceEnd = 2;
inline constexpr std::uint32_t kInstant = 3;
inline constexpr std::uint32_t kCounter = 4;
}  // namespace track_event

namespace debug_annotation {
inline constexpr std::uint32_t kNameIid = 1;
inline constexpr std::uint32_t kBoolValue = 2;
inline constexpr std::uint32_t kUintValue = 3;
inline constexpr std::uint32_t kIntValue = 4;
inline constexpr std::uint32_t kDoubleValue = 5;
inline constexpr std::uint32_t kStringValue = 6;
inline constexpr std::uint32_t kName = 10;
}  // namespace debug_annotation

namespace track_descriptor {
inline constexpr std::uint32_t kUuid = 1;
inline constexpr std::uint32_t kName = 2;
inline constexpr std::uint32_t kProcess = 3;
inline constexpr std::uint32_t kThread = 4;
inline constexpr std::uint32_t kParentUuid = 5;
inline constexpr std::uint32_t kCounter = 8;  // CounterDescriptor: the track holds a counter
}  // namespace track_descriptor

namespace process_descriptor {
inline constexpr std::uint32_t kPid = 1;
inline constexpr std::uint32_t kCmdline = 2;
inline constexpr std::uint32_t kProcessName = 6;
}  // namespace process_descriptor

namespace thread_descriptor {
inline constexpr std::uint32_t kPid = 1;
inline constexpr std::uint32_t kTid = 2;
inline constexpr std::uint32_t kThreadName = 5;
}  // namespace thread_descriptor

namespace interned_data {
inline constexpr std::uint32_t kEventCategories = 1;
inline constexpr std::uint32_t kEventNames = 2;
inline constexpr std::uint32_t kDebugAnnotationNames = 3;
inline constexpr std::uint32_t kSourceLocations = 4;
}  // namespace interned_data

namespace event_name {  // EventName, EventCategory, DebugAnnotationName
inline constexpr std::uint32_t kIid = 1;
inline constexpr std::uint32_t kName = 2;
}  // namespace event_name

namespace source_location {
inline constexpr std::uint32_t kIid = 1;
inline constexpr std::uint32_t kFileName = 2;
inline constexpr std::uint32_t kFunctionName = 3;
inline constexpr std::uint32_t kLineNumber = 4;
}  // namespace source_location

namespace trace_attributes {  // TraceAttributes and its Attribute
inline constexpr std::uint32_t kAttribute = 1;
inline constexpr std::uint32_t kKey = 1;
inline constexpr std::uint32_t kLongValue = 2;
inline constexpr std::uint32_t kStringValue = 3;
}  // namespace trace_attributes

namespace chrome_event_bundle {
inline constexpr std::uint32_t kMetadata = 2;
}

namespace chrome_metadata {
inline constexpr std::uint32_t kName = 1;
inline constexpr std::uint32_t kStringValue = 2;
inline constexpr std::uint32_t kBoolValue = 3;
inline constexpr std::uint32_t kIntValue = 4;
}  // namespace chrome_metadata

}  // namespace vztrace::format::perfetto
