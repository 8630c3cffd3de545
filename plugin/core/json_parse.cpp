// json::parse: RapidJSON's SAX reader into a Value, under strict limits, wiping the reader's scratch memory.
#include "core/json.hpp"
#include "core/json_events.hpp"

#include "core/secret.hpp"

#include "core/rapidjson_config.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(RAPIDJSON_SSE2)
#include <emmintrin.h>
#endif
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

// Bytes of NUL after the text in the scratch copy: a 16-byte load at any byte of the text stays inside it.
constexpr std::size_t scan_padding = 16;

}  // namespace

}  // namespace ivd::json

#if defined(RAPIDJSON_SSE2)
namespace rapidjson {

// RapidJSON's SSE2 scan of a string's plain run first walks a byte at a time up to 16-byte alignment (its
// aligned loads must not cross into an unmapped page), which on the driver's short keys and values was most
// of the scan and the largest single cost of a parse. The scratch copy the reader runs on is padded
// (scan_padding), so this reader's scan loads unaligned from the first byte. It also stops at every byte
// below 0x20: RapidJSON's SIMD loop misses 0x1A-0x1F (it compares against 0x19), so such a byte was refused
// or taken depending on where the string sat relative to the alignment; now it is always refused, as the
// byte-wise path (and the sanitizer builds) did.
template <>
inline void GenericReader<UTF8<>, UTF8<>, ivd::json::WipingAllocator>::ScanCopyUnescapedString(
    InsituStringStream &is, InsituStringStream &) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_max = _mm_set1_epi8(0x1F);
    char *p = is.src_;
    char *q = is.dst_;  // behind p once an escape was decoded in place
    for (;; p += 16, q += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max);  // bytes <= 0x1F
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
        const int mask = _mm_movemask_epi8(hit);
        if (mask != 0) {
            const auto length = static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
            if (p != q) std::memmove(q, p, length);
            p += length;
            q += length;
            break;
        }
        // q is at most p: these 16 bytes overwrite only bytes this step has read.
        if (p != q) _mm_storeu_si128(reinterpret_cast<__m128i *>(q), v);
    }
    is.src_ = p;
    is.dst_ = q;
}

}  // namespace rapidjson
#endif

namespace ivd::json {

ScratchText::~ScratchText() {
    if (data_ != nullptr) wipe_memory(data_, used_);
}

char *ScratchText::assign(const char *text, std::size_t size, std::size_t padding) {
    if (data_ != nullptr) wipe_memory(data_, used_);
    used_ = size + padding + 1;
    if (used_ <= sizeof inline_) {
        data_ = inline_;
    } else {
        copy_.assign(used_, '\0');
        data_ = copy_.data();
    }
    std::memcpy(data_, text, size);
    std::memset(data_ + size, 0, padding + 1);  // the reader stops at the first NUL: the text's end
    return data_;
}

namespace {

std::string printable(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        out += c < 0x20 || c >= 0x7F || c == '"' || c == '\\' ? fmt::format("\\x{:02x}", c)
                                                               : std::string(1, static_cast<char>(c));
    }
    if (s.size() > 64) out += "...";
    return out;
}

// RapidJSON's handler: enforces the limits RapidJSON has no switch for (depth, duplicate keys), tells integers
// from reals by how they were written, and passes each event on.
class Limiter {
public:
    Limiter(const ParseLimits &limits, Events &events)
        : limits_(limits), events_(events), shared_(claim_shared_keys()), keys_(shared_ ? shared_->keys : own_keys_) {
        keys_.clear();
    }
    ~Limiter() {
        if (shared_) shared_->in_use = false;
    }
    Limiter(const Limiter &) = delete;
    Limiter &operator=(const Limiter &) = delete;

    bool Null() { return events_.null(), true; }
    bool Bool(bool b) { return events_.boolean(b), true; }
    bool Int(int n) { return events_.integer(n), true; }
    bool Uint(unsigned n) { return events_.integer(n), true; }
    bool Int64(std::int64_t n) { return events_.integer(n), true; }
    bool Uint64(std::uint64_t n) { return number_unsigned(n), true; }
    bool Double(double d) { return events_.real(d, false), true; }
    bool RawNumber(const char *text, rapidjson::SizeType length, bool) { return number({text, length}), true; }
    bool String(const char *text, rapidjson::SizeType length, bool) { return events_.string({text, length}), true; }
    bool Key(const char *text, rapidjson::SizeType length, bool) {
        keys_.emplace_back(text, length);
        events_.key(keys_.back());
        return true;
    }
    bool StartObject() { return open() && (events_.start_object(), true); }
    bool StartArray() { return open() && (events_.start_array(), true); }
    bool EndObject(rapidjson::SizeType count) {
        const auto first = keys_.end() - static_cast<std::ptrdiff_t>(count);
        if (limits_.reject_duplicate_keys && !check_unique_keys(first, keys_.end())) return false;
        keys_.erase(first, keys_.end());
        --depth_;
        events_.end_object(count);
        return true;
    }
    bool EndArray(rapidjson::SizeType count) {
        --depth_;
        events_.end_array(count);
        return true;
    }

    const std::string &failure() const { return failure_; }

private:
    bool open() {
        if (depth_ >= limits_.max_depth) {
            failure_ = fmt::format("nesting deeper than {} levels", limits_.max_depth);
            return false;
        }
        ++depth_;
        return true;
    }

    using Keys = std::vector<std::string_view>;

    // One list per thread, reused: an allocation per parse was measurable per call. A parse started inside
    // another's event handler finds it in use and keeps a list of its own.
    struct SharedKeys {
        Keys keys;
        bool in_use = false;
    };
    static SharedKeys *claim_shared_keys() {
        thread_local SharedKeys shared = [] {
            SharedKeys s;
            s.keys.reserve(64);
            return s;
        }();
        if (shared.in_use) return nullptr;
        shared.in_use = true;
        return &shared;
    }

    // A 64-bit signature of each key (its first and last 8 bytes and its length) in a small open-addressing
    // set: keys with distinct signatures are distinct. An equal signature proves nothing; the exact comparison
    // in check_unique_keys then decides (so the result never depends on the hash).
    static bool distinct_signatures(Keys::iterator first, Keys::iterator last) {
        std::array<std::uint64_t, 64> seen{};  // 0: empty; at most 32 keys come here
        for (auto i = first; i != last; ++i) {
            std::uint64_t head = 0;
            std::uint64_t tail = 0;
            if (i->size() >= sizeof head) {
                std::memcpy(&head, i->data(), sizeof head);
                std::memcpy(&tail, i->data() + i->size() - sizeof tail, sizeof tail);
            } else {
                for (std::size_t b = 0; b < i->size(); ++b) head |= std::uint64_t{static_cast<unsigned char>((*i)[b])} << (8 * b);
            }
            std::uint64_t h = (head * 0x9E3779B97F4A7C15ULL) ^ ((tail + i->size()) * 0xC2B2AE3D27D4EB4FULL);
            h = (h ^ (h >> 29)) | 1;
            for (std::size_t b = h >> 58;; b = (b + 1) & 63) {
                if (seen[b] == h) return false;
                if (seen[b] == 0) {
                    seen[b] = h;
                    break;
                }
            }
        }
        return true;
    }

    bool check_unique_keys(Keys::iterator first, Keys::iterator last) {
        const std::size_t n = static_cast<std::size_t>(last - first);
        const std::string_view *duplicate = nullptr;
        if (n <= 32 && distinct_signatures(first, last)) return true;  // the common case, without comparing pairs
        if (n <= 32) {  // the driver's documents: compare pairs, length and first byte before the bytes
            const auto same = [](std::string_view a, std::string_view b) {
                return a.size() == b.size() && (a.empty() || (a[0] == b[0] && a == b));
            };
            for (auto i = first; i != last && duplicate == nullptr; ++i) {
                for (auto j = first; j != i; ++j) {
                    if (same(*i, *j)) {
                        duplicate = &*i;
                        break;
                    }
                }
            }
        } else {  // a large object: sort views instead of comparing every pair
            Keys keys(first, last);
            std::sort(keys.begin(), keys.end());
            const auto it = std::adjacent_find(keys.begin(), keys.end());
            if (it != keys.end()) {
                for (auto i = first; i != last; ++i) {
                    if (*i == *it) duplicate = &*i;
                }
            }
        }
        if (duplicate == nullptr) return true;
        failure_ = fmt::format("duplicate key \"{}\"", printable(*duplicate));
        return false;
    }

    void number_unsigned(std::uint64_t u) {
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            events_.integer(static_cast<std::int64_t>(u));
        } else {
            events_.unsigned_integer(u);
        }
    }

    // RapidJSON hands numbers over as text, so integers are kept exactly and told apart from reals by how
    // they were written (1 vs 1.0 vs 1e0), as JSON's grammar does.
    void number(std::string_view text) {
        const char *begin = text.data();
        const char *end = begin + text.size();
        if (text.find_first_of(".eE") == std::string_view::npos) {
            std::int64_t n = 0;
            if (const auto r = std::from_chars(begin, end, n); r.ec == std::errc() && r.ptr == end) {
                return events_.integer(n);
            }
            std::uint64_t u = 0;
            if (const auto r = std::from_chars(begin, end, u); r.ec == std::errc() && r.ptr == end) {
                return events_.unsigned_integer(u);
            }
            return events_.real(std::strtod(std::string(text).c_str(), nullptr), true);
        }
        double d = 0;
        const auto r = std::from_chars(begin, end, d);
        if (r.ec == std::errc::result_out_of_range) d = 0;  // underflow (RapidJSON refuses overflow)
        events_.real(d, false);
    }

    const ParseLimits &limits_;
    Events &events_;
    SharedKeys *shared_;  // this thread's list, or null when an outer parse holds it
    Keys own_keys_;
    Keys &keys_;  // keys of the open objects, innermost last (views into this parse's text)
    int depth_ = 0;
    std::string failure_;
};

}  // namespace

ValueBuilder::ValueBuilder() { stack_.reserve(32); }

// Values moved out of the scratch stack leave bytes behind (a short string's inline buffer is copied, not
// cleared): overwrite the whole block before it is freed.
ValueBuilder::~ValueBuilder() {
    stack_.clear();
    wipe_memory(static_cast<void *>(stack_.data()), high_water_ * sizeof(Member));
}

void ValueBuilder::null() { push(Value()); }
void ValueBuilder::boolean(bool b) { push(Value(b)); }
void ValueBuilder::integer(std::int64_t n) { push(Value(n)); }
void ValueBuilder::unsigned_integer(std::uint64_t n) { push(Value(n)); }
void ValueBuilder::real(double d, bool oversized_integer) {
    Value v(d);
    v.oversized_integer_ = oversized_integer;
    push(std::move(v));
}
void ValueBuilder::string(std::string_view s) { push(Value(std::string(s))); }
void ValueBuilder::key(std::string_view k) {
    make_room();
    stack_.push_back(Member{std::string(k), Value()});
    high_water_ = std::max(high_water_, stack_.size());
}
void ValueBuilder::start_object() { in_object_.push_back(true); }
void ValueBuilder::start_array() { in_object_.push_back(false); }

void ValueBuilder::end_object(std::size_t count) {
    const auto first = stack_.end() - static_cast<std::ptrdiff_t>(count);
    Object members;
    members.reserve(count);
    for (auto it = first; it != stack_.end(); ++it) members.push_back(std::move(*it));
    stack_.erase(first, stack_.end());
    in_object_.pop_back();
    push(Value(std::move(members)));
}

void ValueBuilder::end_array(std::size_t count) {
    const auto first = stack_.end() - static_cast<std::ptrdiff_t>(count);
    Array items;
    items.reserve(count);
    for (auto it = first; it != stack_.end(); ++it) items.push_back(std::move(it->value));
    stack_.erase(first, stack_.end());
    in_object_.pop_back();
    push(Value(std::move(items)));
}

Value ValueBuilder::take() { return std::move(root_); }

void ValueBuilder::wipe() noexcept {
    for (Member &m : stack_) m.value.wipe_strings();
}

// A value completes an array item, an object member (whose key came first) or the document.
void ValueBuilder::push(Value v) {
    if (in_object_.empty()) {
        root_ = std::move(v);
    } else if (in_object_.back()) {
        stack_.back().value = std::move(v);  // key() pushed the member just before
    } else {
        make_room();
        stack_.push_back(Member{std::string(), std::move(v)});
        high_water_ = std::max(high_water_, stack_.size());
    }
}

// Grows the scratch stack by hand so that the block it leaves is wiped too.
void ValueBuilder::make_room() {
    if (stack_.size() < stack_.capacity()) return;
    Object bigger;
    bigger.reserve(stack_.capacity() * 2);
    for (Member &m : stack_) bigger.push_back(std::move(m));
    stack_.clear();
    wipe_memory(static_cast<void *>(stack_.data()), high_water_ * sizeof(Member));
    stack_.swap(bigger);
}

bool parse_events(const char *text, std::size_t size, const ParseLimits &limits, Events &events,
                  ScratchText &scratch, ParseError &error) {
    if (size > limits.max_bytes) {
        error = {limits.max_bytes, fmt::format("larger than {} bytes", limits.max_bytes)};
        return false;
    }
    // RapidJSON reads a NUL as the end of input; JSON text has no NUL outside strings' escapes.
    if (const void *nul = std::memchr(text, '\0', size); nul != nullptr) {
        error = {static_cast<std::size_t>(static_cast<const char *>(nul) - text), "contains a NUL byte"};
        return false;
    }
    // UTF-8 is checked over the whole text first (one fast pass) rather than string by string here.
    if (!valid_utf8({text, size})) {
        error = {0, "not valid UTF-8", true};
        return false;
    }
    constexpr unsigned flags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseInsituFlag;
    Limiter limiter(limits, events);
    rapidjson::InsituStringStream stream(scratch.assign(text, size, scan_padding));
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, WipingAllocator> reader;
    const rapidjson::ParseResult parsed = reader.Parse<flags>(stream, limiter);
    if (!parsed.IsError()) return true;
    std::string reason = parsed.Code() == rapidjson::kParseErrorTermination && !limiter.failure().empty()
                             ? limiter.failure()
                             : std::string(rapidjson::GetParseError_En(parsed.Code()));
    if (!reason.empty() && reason.back() == '.') reason.pop_back();
    if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    error = {parsed.Offset(), std::move(reason)};
    return false;
}

ParseResult parse(const char *text, std::size_t size, const ParseLimits &limits) {
    ParseResult result;
    ValueBuilder builder;
    ScratchText scratch;
    if (!parse_events(text, size, limits, builder, scratch, result.error)) {
        builder.wipe();
        return result;
    }
    result.value = builder.take();
    result.ok = true;
    return result;
}

}  // namespace ivd::json
