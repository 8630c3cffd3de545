#include "core/json.hpp"

#include "core/secret.hpp"

// RapidJSON scans string runs 16 bytes at a time with SSE2, which every x86-64 has. Its aligned 16-byte loads
// may read past a string's end within the same block (never across a page, so harmless), which the sanitizers
// report: sanitized builds take RapidJSON's byte-by-byte path instead.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IVD_JSON_NO_SIMD
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define IVD_JSON_NO_SIMD
#endif
#endif
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2) && !defined(IVD_JSON_NO_SIMD)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ivd::json {

namespace {

const Value &shared_null() {
    static const Value null;
    return null;
}

const Array &no_items() {
    static const Array empty;
    return empty;
}

const Object &no_members() {
    static const Object empty;
    return empty;
}

const std::string &no_string() {
    static const std::string empty;
    return empty;
}

}  // namespace

Value::Value(unsigned long n) {
    if (n <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        data_ = static_cast<std::int64_t>(n);
    } else {
        data_ = static_cast<std::uint64_t>(n);
    }
}

Value::Value(unsigned long long n) : Value(static_cast<unsigned long>(n)) {}
Value::Value(Array a) : data_(std::move(a)) {}
Value::Value(Object o) : data_(std::move(o)) {}

Value Value::object(std::size_t reserve) {
    Object o;
    o.reserve(reserve);
    return Value(std::move(o));
}

Value Value::array(std::size_t reserve) {
    Array a;
    a.reserve(reserve);
    return Value(std::move(a));
}

Type Value::type() const noexcept {
    switch (data_.index()) {
    case 0: return Type::null;
    case 1: return Type::boolean;
    case 2:
    case 3: return Type::integer;
    case 4: return Type::real;
    case 5: return Type::string;
    case 6: return Type::array;
    default: return Type::object;
    }
}

bool Value::as_bool() const noexcept {
    const bool *b = std::get_if<bool>(&data_);
    return b != nullptr && *b;
}

std::int64_t Value::as_int64() const noexcept {
    if (const auto *n = std::get_if<std::int64_t>(&data_)) return *n;
    if (const auto *u = std::get_if<std::uint64_t>(&data_)) return static_cast<std::int64_t>(*u);
    return 0;
}

std::uint64_t Value::as_uint64() const noexcept {
    if (const auto *n = std::get_if<std::int64_t>(&data_)) return static_cast<std::uint64_t>(*n);
    if (const auto *u = std::get_if<std::uint64_t>(&data_)) return *u;
    return 0;
}

double Value::as_double() const noexcept {
    if (const auto *d = std::get_if<double>(&data_)) return *d;
    if (const auto *n = std::get_if<std::int64_t>(&data_)) return static_cast<double>(*n);
    if (const auto *u = std::get_if<std::uint64_t>(&data_)) return static_cast<double>(*u);
    return 0;
}

const std::string &Value::as_string() const noexcept {
    const auto *s = std::get_if<std::string>(&data_);
    return s != nullptr ? *s : no_string();
}

std::size_t Value::size() const noexcept {
    if (const auto *a = std::get_if<Array>(&data_)) return a->size();
    if (const auto *o = std::get_if<Object>(&data_)) return o->size();
    return 0;
}

const Array &Value::items() const noexcept {
    const auto *a = std::get_if<Array>(&data_);
    return a != nullptr ? *a : no_items();
}

const Object &Value::members() const noexcept {
    const auto *o = std::get_if<Object>(&data_);
    return o != nullptr ? *o : no_members();
}

Array &Value::items() {
    if (std::holds_alternative<Null>(data_)) data_ = Array{};
    return std::get<Array>(data_);  // throws std::bad_variant_access on misuse: a programming error
}

Object &Value::members() {
    if (std::holds_alternative<Null>(data_)) data_ = Object{};
    return std::get<Object>(data_);
}

const Value *Value::find(std::string_view key) const noexcept {
    const auto *o = std::get_if<Object>(&data_);
    if (o == nullptr) return nullptr;
    for (const Member &m : *o) {
        if (m.key == key) return &m.value;
    }
    return nullptr;
}

Value *Value::find(std::string_view key) noexcept {
    return const_cast<Value *>(std::as_const(*this).find(key));
}

const Value &Value::operator[](std::string_view key) const noexcept {
    const Value *v = find(key);
    return v != nullptr ? *v : shared_null();
}

const Value &Value::operator[](std::size_t index) const noexcept {
    const auto *a = std::get_if<Array>(&data_);
    return a != nullptr && index < a->size() ? (*a)[index] : shared_null();
}

Value &Value::operator[](std::string_view key) {
    Object &o = members();
    for (Member &m : o) {
        if (m.key == key) return m.value;
    }
    return o.emplace_back(Member{std::string(key), Value()}).value;
}

Value &Value::add(std::string_view key, Value value) {
    return members().emplace_back(Member{std::string(key), std::move(value)}).value;
}

Value &Value::append(Value item) { return items().emplace_back(std::move(item)); }

bool Value::remove(std::string_view key) {
    auto *o = std::get_if<Object>(&data_);
    if (o == nullptr) return false;
    const auto it = std::find_if(o->begin(), o->end(), [&](const Member &m) { return m.key == key; });
    if (it == o->end()) return false;
    o->erase(it);
    return true;
}

void Value::wipe_strings() noexcept {
    if (auto *s = std::get_if<std::string>(&data_)) {
        wipe_memory(s->data(), s->size());
    } else if (auto *a = std::get_if<Array>(&data_)) {
        for (Value &v : *a) v.wipe_strings();
    } else if (auto *o = std::get_if<Object>(&data_)) {
        for (Member &m : *o) {
            wipe_memory(m.key.data(), m.key.size());
            m.value.wipe_strings();
        }
    }
}

bool operator==(const Value &a, const Value &b) {
    if (a.type() != b.type()) return false;
    if (a.is_integer()) return a.integer_is_unsigned() == b.integer_is_unsigned() && a.as_uint64() == b.as_uint64();
    return a.data_ == b.data_;
}

bool valid_utf8(std::string_view s) noexcept {
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        // Mostly ASCII: skip eight bytes at a time while none has the top bit set.
        while (i + 8 <= n) {
            std::uint64_t word;
            std::memcpy(&word, p + i, sizeof word);
            if ((word & 0x8080808080808080ull) != 0) break;
            i += 8;
        }
        if (i >= n) break;
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t extra = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= n) return false;  // truncated sequence
        for (std::size_t k = 1; k <= extra; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            return false;
        }
        i += extra + 1;
    }
    return true;
}

// ---- parsing -------------------------------------------------------------------------------------------------

namespace {

// RapidJSON's reader keeps decoded strings (a CHAP password among them) in its own stack: this allocator
// overwrites every block before giving it back. Free gets no size, so each block records its own.
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
        if (n <= 16) {
            for (auto i = first; i != last && duplicate == nullptr; ++i) {
                for (auto j = first; j != i; ++j) {
                    if (i->key == j->key) {
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
    constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
    Builder builder(limits);
    rapidjson::StringStream stream(text);
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

// ---- writing -------------------------------------------------------------------------------------------------

namespace {

template <class Writer>
void emit(Writer &w, const Value &v) {
    switch (v.type()) {
    case Type::null: w.Null(); break;
    case Type::boolean: w.Bool(v.as_bool()); break;
    case Type::integer:
        if (v.integer_is_unsigned()) {
            w.Uint64(v.as_uint64());
        } else {
            w.Int64(v.as_int64());
        }
        break;
    case Type::real:
        if (std::isfinite(v.as_double())) {
            w.Double(v.as_double());
        } else {
            w.Null();  // JSON has no NaN or infinity
        }
        break;
    case Type::string: w.String(v.as_string().data(), static_cast<rapidjson::SizeType>(v.as_string().size())); break;
    case Type::array:
        w.StartArray();
        for (const Value &item : v.items()) emit(w, item);
        w.EndArray();
        break;
    case Type::object:
        w.StartObject();
        for (const Member &m : v.members()) {
            w.Key(m.key.data(), static_cast<rapidjson::SizeType>(m.key.size()));
            emit(w, m.value);
        }
        w.EndObject();
        break;
    }
}

}  // namespace

std::string write(const Value &value) {
    rapidjson::StringBuffer buffer(nullptr, 4096);  // a device_info fits: no regrowth on the common path
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    emit(writer, value);
    return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace ivd::json
