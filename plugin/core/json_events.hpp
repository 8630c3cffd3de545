// A JSON document as a stream of events, for readers that fill their own types instead of a json::Value tree.
// parse_events enforces everything json::parse does (size, NUL bytes, UTF-8, RFC 8259, depth, duplicate keys,
// exact integers) and reports the same errors; json::parse is built on it.
#pragma once

#include "core/json.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::json {

// Receives a document's keys, values and container bounds in order. String views point into the scratch copy
// (ScratchText) the parse ran on and stay valid while it lives. The limits are checked before an event is sent.
class Events {
public:
    virtual ~Events() = default;
    virtual void null() = 0;
    virtual void boolean(bool b) = 0;
    virtual void integer(std::int64_t n) = 0;
    virtual void unsigned_integer(std::uint64_t n) = 0;  // only above INT64_MAX
    // A number with a fraction or exponent, or an integer too large for 64 bits (oversized_integer).
    virtual void real(double d, bool oversized_integer) = 0;
    virtual void string(std::string_view s) = 0;
    virtual void key(std::string_view k) = 0;
    virtual void start_object() = 0;
    virtual void end_object(std::size_t members) = 0;
    virtual void start_array() = 0;
    virtual void end_array(std::size_t items) = 0;
};

// Builds a json::Value from events (json::parse is parse_events into one). Values wait on one scratch stack
// until their container ends; each container is then made once at its exact size.
class ValueBuilder final : public Events {
public:
    ValueBuilder();
    ValueBuilder(const ValueBuilder &) = delete;
    ValueBuilder &operator=(const ValueBuilder &) = delete;
    ~ValueBuilder() override;

    void null() override;
    void boolean(bool b) override;
    void integer(std::int64_t n) override;
    void unsigned_integer(std::uint64_t n) override;
    void real(double d, bool oversized_integer) override;
    void string(std::string_view s) override;
    void key(std::string_view k) override;
    void start_object() override;
    void end_object(std::size_t members) override;
    void start_array() override;
    void end_array(std::size_t items) override;

    Value take();
    // The scratch stack may hold a secret that was never moved into the result (the parse failed midway).
    void wipe() noexcept;

private:
    void push(Value v);
    void make_room();

    Value root_;
    Object stack_;  // pending values; an object's members carry their keys, an array's items empty keys
    std::vector<bool> in_object_;  // per open container: object or array
    std::size_t high_water_ = 0;   // slots of stack_ that ever held a value (and are wiped at the end)
};

// The copy of the text the reader decodes strings in place in; overwritten when freed (it may hold a secret).
class ScratchText {
public:
    ScratchText() = default;
    ScratchText(const ScratchText &) = delete;
    ScratchText &operator=(const ScratchText &) = delete;
    ~ScratchText();
    // NUL-terminated, as the reader needs, and padded with `padding` more NULs (its 16-byte loads).
    char *assign(const char *text, std::size_t size, std::size_t padding);

private:
    // The driver's documents fit inline: no allocation per parse. Larger ones go to copy_.
    char inline_[2048];
    std::string copy_;
    char *data_ = nullptr;  // inline_ or copy_'s bytes
    std::size_t used_ = 0;  // bytes written there (wiped before reuse and at the end)
};

// Parses `size` bytes at `text` (text[size] must be a NUL) into `events`, using `scratch`. False: `error` says
// why (events may have seen part of the document).
bool parse_events(const char *text, std::size_t size, const ParseLimits &limits, Events &events,
                  ScratchText &scratch, ParseError &error);

}  // namespace ivd::json
