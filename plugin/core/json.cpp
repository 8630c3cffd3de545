#include "core/json.hpp"

#include "core/secret.hpp"

#include "core/rapidjson_config.hpp"

#include <rapidjson/internal/dtoa.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <array>
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

// ---- writing -------------------------------------------------------------------------------------------------

namespace {

// RapidJSON's compact Writer, byte for byte (tests/unit/json_test.cpp compares the two), written straight into
// one string: runs without escapes copied at once instead of a character at a time. One difference: RapidJSON's
// SSE2 scan lets 0x1A..0x1F through unescaped in strings of 16 bytes or more (invalid JSON); they are escaped
// here, as its byte-by-byte path does.
template <class Writer>
void emit(Writer &w, const Value &v) {
    switch (v.type()) {
    case Type::null: w.null(); break;
    case Type::boolean: w.boolean(v.as_bool()); break;
    case Type::integer:
        if (v.integer_is_unsigned()) {
            w.unsigned_integer(v.as_uint64());
        } else {
            w.integer(v.as_int64());
        }
        break;
    case Type::real:
        if (std::isfinite(v.as_double())) {
            w.real(v.as_double());
        } else {
            w.null();  // JSON has no NaN or infinity
        }
        break;
    case Type::string: w.string(v.as_string()); break;
    case Type::array:
        w.start_array();
        for (const Value &item : v.items()) emit(w, item);
        w.end_array();
        break;
    case Type::object:
        w.start_object();
        for (const Member &m : v.members()) {
            w.key(m.key);
            emit(w, m.value);
        }
        w.end_object();
        break;
    }
}

// RapidJSON's escapes: the two-character forms where JSON has them, \u00XX (upper-case hex) for the other
// control characters; everything else, UTF-8 included, as is.
constexpr std::array<char, 256> escape_table = [] {
    std::array<char, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = 'u';
    t['\b'] = 'b', t['\t'] = 't', t['\n'] = 'n', t['\f'] = 'f', t['\r'] = 'r';
    t['"'] = '"', t['\\'] = '\\';
    return t;
}();

// The first byte at or after p that needs an escape (or end): 16 bytes a step with SSE2, loads only within
// [p, end) so the sanitizers have nothing to say; then a byte at a time.
const char *skip_unescaped(const char *p, const char *end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_max = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max);  // bytes <= 0x1F
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
        const int mask = _mm_movemask_epi8(hit);
        if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
        p += 16;
    }
#endif
    while (p != end && escape_table[static_cast<unsigned char>(*p)] == 0) ++p;
    return p;
}

}  // namespace

std::string write(const Value &value) {
    TextWriter writer;
    emit(writer, value);
    return writer.take();
}

void TextWriter::separate() {
    if (after_value_) put(',');
}
void TextWriter::open(char bracket) {
    separate();
    put(bracket);
    after_value_ = false;
}
void TextWriter::close(char bracket) {
    put(bracket);
    after_value_ = true;
}
void TextWriter::start_object() { open('{'); }
void TextWriter::end_object() { close('}'); }
void TextWriter::start_array() { open('['); }
void TextWriter::end_array() { close(']'); }
void TextWriter::key(std::string_view k) {
    string(k);
    put(':');
    after_value_ = false;
}
void TextWriter::string(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    // Most strings need no escape: room for the quotes and the bytes at once.
    const bool comma = after_value_;
    char *out = room(s.size() + 3);
    if (comma) *out++ = ',';
    *out++ = '"';
    end_ = static_cast<std::size_t>(out - out_.data());
    const char *p = s.data();
    const char *const end = p + s.size();
    for (;;) {
        const char *run = p;
        p = skip_unescaped(p, end);
        put(run, static_cast<std::size_t>(p - run));
        if (p == end) break;
        const auto c = static_cast<unsigned char>(*p++);
        const char e = escape_table[c];
        const char escaped[] = {'\\', e, '0', '0', hex[c >> 4], hex[c & 0xF]};
        put(escaped, e == 'u' ? 6 : 2);
    }
    put('"');
    after_value_ = true;
}
void TextWriter::integer(std::int64_t n) {
    char buffer[24];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, n);
    separate();
    put(buffer, static_cast<std::size_t>(r.ptr - buffer));
    after_value_ = true;
}
void TextWriter::unsigned_integer(std::uint64_t n) {
    char buffer[24];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, n);
    separate();
    put(buffer, static_cast<std::size_t>(r.ptr - buffer));
    after_value_ = true;
}
void TextWriter::real(double d) {
    constexpr int max_decimal_places = 324;  // RapidJSON Writer's default: no rounding
    char buffer[32];  // RapidJSON's own shortest form (Grisu2), as its Writer writes doubles
    char *end = rapidjson::internal::dtoa(d, buffer, max_decimal_places);
    separate();
    put(buffer, static_cast<std::size_t>(end - buffer));
    after_value_ = true;
}
void TextWriter::boolean(bool b) {
    separate();
    if (b) {
        put("true", 4);
    } else {
        put("false", 5);
    }
    after_value_ = true;
}
void TextWriter::null() {
    separate();
    put("null", 4);
    after_value_ = true;
}
void TextWriter::value(const Value &v) { emit(*this, v); }
std::string TextWriter::take() {
    out_.resize(end_);
    end_ = 0;
    return std::move(out_);
}

}  // namespace ivd::json
