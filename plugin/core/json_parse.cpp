// json::parse: RapidJSON's SAX reader into a Value, under strict limits, wiping the reader's scratch memory.
#include "core/json.hpp"

#include "core/secret.hpp"

#include "core/rapidjson_config.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ivd::json {

// ---- parsing -------------------------------------------------------------------------------------------------

namespace {

// RapidJSON's reader keeps scratch data (with in-place parsing no longer decoded strings, but wiping costs
// little) in its own stack: this allocator overwrites every block before giving it back. Free gets no size, so each block records its own.
class WipingAllocator {
public:
    [[maybe_unused]] static constexpr bool kNeedFree = true;  // RapidJSON's allocator concept asks for it
    void *Malloc(std::size_t size) {
        if (size == 0) return nullptr;
        auto *block = static_cast<std::size_t *>(std::malloc(size + header));
        if (block == nullptr) return nullptr;
        block[0] = size;
        return reinterpret_cast<char *>(block) + header;
    }
    void *Realloc(void *original, std::size_t original_size, std::size_t new_size) {
        if (new_size == 0) {
            Free(original);
            return nullptr;
        }
        void *grown = Malloc(new_size);
        if (grown != nullptr && original != nullptr) {
            std::memcpy(grown, original, std::min(original_size, new_size));
        }
        Free(original);
        return grown;
    }
    static void Free(void *p) {
        if (p == nullptr) return;
        char *block = static_cast<char *>(p) - header;
        wipe_memory(block, *reinterpret_cast<std::size_t *>(block) + header);
        std::free(block);
    }

private:
    static constexpr std::size_t header = alignof(std::max_align_t);
};

}  // namespace

// The reader decodes strings in place (no per-byte copy onto its own stack): it gets a copy of the text,
// overwritten before it is freed since it may hold a CHAP password.
class ScratchCopy {
public:
    ScratchCopy(const char *text, std::size_t size) : copy_(text, size) {}
    ScratchCopy(const ScratchCopy &) = delete;
    ScratchCopy &operator=(const ScratchCopy &) = delete;
    ~ScratchCopy() { wipe_memory(copy_.data(), copy_.size()); }
    char *data() { return copy_.data(); }  // NUL-terminated, as the reader needs

private:
    std::string copy_;
};

// Builds a Value from RapidJSON's events, enforcing the limits RapidJSON has no switch for. Values wait on one
// scratch stack until their container ends; each container is then made once at its exact size.
class Builder {
public:
    explicit Builder(const ParseLimits &limits) : limits_(limits) { stack_.reserve(32); }
    Builder(const Builder &) = delete;
    Builder &operator=(const Builder &) = delete;
    // Values moved out of the scratch stack leave bytes behind (a short string's inline buffer is copied, not
    // cleared): overwrite the whole block before it is freed.
    ~Builder() {
        stack_.clear();
        wipe_memory(static_cast<void *>(stack_.data()), high_water_ * sizeof(Member));
    }

    bool Null() { return push(Value()); }
    bool Bool(bool b) { return push(Value(b)); }
    bool Int(int n) { return push(Value(n)); }
    bool Uint(unsigned n) { return push(Value(n)); }
    bool Int64(std::int64_t n) { return push(Value(n)); }
    bool Uint64(std::uint64_t n) { return push(Value(n)); }
    bool Double(double d) { return push(Value(d)); }
    bool RawNumber(const char *text, rapidjson::SizeType length, bool) { return push(number({text, length})); }
    bool String(const char *text, rapidjson::SizeType length, bool) { return push(Value(std::string(text, length))); }
    bool Key(const char *text, rapidjson::SizeType length, bool) {
        make_room();
        stack_.push_back(Member{std::string(text, length), Value()});
        high_water_ = std::max(high_water_, stack_.size());
        return true;
    }
    bool StartObject() { return open(true); }
    bool StartArray() { return open(false); }
    bool EndObject(rapidjson::SizeType count) {
        const auto first = stack_.end() - static_cast<std::ptrdiff_t>(count);
        if (limits_.reject_duplicate_keys && !check_unique_keys(first, stack_.end())) return false;
        Object members;
        members.reserve(count);
        for (auto it = first; it != stack_.end(); ++it) members.push_back(std::move(*it));
        stack_.erase(first, stack_.end());
        in_object_.pop_back();
        return push(Value(std::move(members)));
    }
    bool EndArray(rapidjson::SizeType count) {
        const auto first = stack_.end() - static_cast<std::ptrdiff_t>(count);
        Array items;
        items.reserve(count);
        for (auto it = first; it != stack_.end(); ++it) items.push_back(std::move(it->value));
        stack_.erase(first, stack_.end());
        in_object_.pop_back();
        return push(Value(std::move(items)));
    }

    Value take() { return std::move(root_); }
    const std::string &failure() const { return failure_; }

    // The scratch stack may hold a secret that was never moved into the result (the parse failed midway).
    void wipe() noexcept {
        for (Member &m : stack_) m.value.wipe_strings();
    }

private:
    // A value completes an array item, an object member (whose key came first) or the document.
    bool push(Value v) {
        if (in_object_.empty()) {
            root_ = std::move(v);
        } else if (in_object_.back()) {
            stack_.back().value = std::move(v);  // Key() pushed the member just before
        } else {
            make_room();
            stack_.push_back(Member{std::string(), std::move(v)});
            high_water_ = std::max(high_water_, stack_.size());
        }
        return true;
    }

    // Grows the scratch stack by hand so that the block it leaves is wiped too.
    void make_room() {
        if (stack_.size() < stack_.capacity()) return;
        Object bigger;
        bigger.reserve(stack_.capacity() * 2);
        for (Member &m : stack_) bigger.push_back(std::move(m));
        stack_.clear();
        wipe_memory(static_cast<void *>(stack_.data()), high_water_ * sizeof(Member));
        stack_.swap(bigger);
    }

    bool open(bool object) {
        if (static_cast<int>(in_object_.size()) >= limits_.max_depth) {
            failure_ = fmt::format("nesting deeper than {} levels", limits_.max_depth);
            return false;
        }
        in_object_.push_back(object);
        return true;
    }

    bool check_unique_keys(Object::iterator first, Object::iterator last) {
        const std::size_t n = static_cast<std::size_t>(last - first);
        const std::string *duplicate = nullptr;
        if (n <= 32) {  // the driver's documents: compare pairs, length and first byte before the bytes
            const auto same = [](const std::string &a, const std::string &b) {
                return a.size() == b.size() && (a.empty() || (a[0] == b[0] && a == b));
            };
            for (auto i = first; i != last && duplicate == nullptr; ++i) {
                for (auto j = first; j != i; ++j) {
                    if (same(i->key, j->key)) {
                        duplicate = &i->key;
                        break;
                    }
                }
            }
        } else {  // a large object: sort views instead of comparing every pair
            std::vector<std::string_view> keys;
            keys.reserve(n);
            for (auto i = first; i != last; ++i) keys.emplace_back(i->key);
            std::sort(keys.begin(), keys.end());
            const auto it = std::adjacent_find(keys.begin(), keys.end());
            if (it != keys.end()) {
                for (auto i = first; i != last; ++i) {
                    if (i->key == *it) duplicate = &i->key;
                }
            }
        }
        if (duplicate == nullptr) return true;
        failure_ = fmt::format("duplicate key \"{}\"", printable(*duplicate));
        return false;
    }

    static std::string printable(std::string_view s) {
        std::string out;
        for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            out += c < 0x20 || c >= 0x7F || c == '"' || c == '\\' ? fmt::format("\\x{:02x}", c)
                                                                   : std::string(1, static_cast<char>(c));
        }
        if (s.size() > 64) out += "...";
        return out;
    }

    // RapidJSON hands numbers over as text, so integers are kept exactly and told apart from reals by how
    // they were written (1 vs 1.0 vs 1e0), as JSON's grammar does.
    Value number(std::string_view text) {
        const char *begin = text.data();
        const char *end = begin + text.size();
        if (text.find_first_of(".eE") == std::string_view::npos) {
            std::int64_t n = 0;
            if (const auto r = std::from_chars(begin, end, n); r.ec == std::errc() && r.ptr == end) return Value(n);
            std::uint64_t u = 0;
            if (const auto r = std::from_chars(begin, end, u); r.ec == std::errc() && r.ptr == end) return Value(u);
            Value big(std::strtod(std::string(text).c_str(), nullptr));
            big.oversized_integer_ = true;
            return big;
        }
        double d = 0;
        const auto r = std::from_chars(begin, end, d);
        if (r.ec == std::errc::result_out_of_range) d = 0;  // underflow (RapidJSON refuses overflow)
        return Value(d);
    }

    const ParseLimits &limits_;
    Value root_;
    Object stack_;  // pending values; an object's members carry their keys, an array's items empty keys
    std::vector<bool> in_object_;  // per open container: object or array
    std::size_t high_water_ = 0;   // slots of stack_ that ever held a value (and are wiped at the end)
    std::string failure_;
};


ParseResult parse(const char *text, std::size_t size, const ParseLimits &limits) {
    ParseResult result;
    if (size > limits.max_bytes) {
        result.error = {limits.max_bytes, fmt::format("larger than {} bytes", limits.max_bytes)};
        return result;
    }
    // RapidJSON reads a NUL as the end of input; JSON text has no NUL outside strings' escapes.
    if (const void *nul = std::memchr(text, '\0', size); nul != nullptr) {
        result.error = {static_cast<std::size_t>(static_cast<const char *>(nul) - text), "contains a NUL byte"};
        return result;
    }
    // UTF-8 is checked over the whole text first (one fast pass) rather than string by string here.
    if (!valid_utf8({text, size})) {
        result.error = {0, "not valid UTF-8", true};
        return result;
    }
    constexpr unsigned flags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseInsituFlag;
    Builder builder(limits);
    ScratchCopy scratch(text, size);
    rapidjson::InsituStringStream stream(scratch.data());
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, WipingAllocator> reader;
    const rapidjson::ParseResult parsed = reader.Parse<flags>(stream, builder);
    if (parsed.IsError()) {
        builder.wipe();
        std::string reason = parsed.Code() == rapidjson::kParseErrorTermination && !builder.failure().empty()
                                 ? builder.failure()
                                 : std::string(rapidjson::GetParseError_En(parsed.Code()));
        if (!reason.empty() && reason.back() == '.') reason.pop_back();
        if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
        result.error = {parsed.Offset(), std::move(reason)};
        return result;
    }
    result.value = builder.take();
    result.ok = true;
    return result;
}

}  // namespace ivd::json
