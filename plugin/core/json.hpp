// The driver's one JSON value type: what requests are parsed into and what results are built from.
// A small value type (objects keep insertion order and live in a vector: the documents are small) on top of
// RapidJSON's SAX reader and writer, which carry the grammar, UTF-8 validation and escaping.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ivd::json {

enum class Type { null, boolean, integer, real, string, array, object };

class Value;
struct Member;
using Array = std::vector<Value>;
using Object = std::vector<Member>;

class Value {
public:
    // Constructors are defined below Member: a body here would need Member complete (clang checks it).
    Value();
    Value(std::nullptr_t);          // NOLINT: implicit, like a JSON literal
    Value(bool b);                  // NOLINT
    Value(int n);                   // NOLINT
    Value(long n);                  // NOLINT
    Value(long long n);             // NOLINT
    Value(unsigned n);              // NOLINT
    Value(unsigned long n);         // NOLINT
    Value(unsigned long long n);    // NOLINT
    Value(double d);                // NOLINT
    Value(const char *s);           // NOLINT
    Value(std::string s);           // NOLINT
    Value(std::string_view s);      // NOLINT
    Value(Array a);                 // NOLINT
    Value(Object o);                // NOLINT
    Value(const Value &);
    Value(Value &&) noexcept;
    Value &operator=(const Value &);
    Value &operator=(Value &&) noexcept;
    ~Value();

    static Value object(std::size_t reserve = 0);
    static Value array(std::size_t reserve = 0);

    Type type() const noexcept;
    bool is_null() const noexcept { return type() == Type::null; }
    bool is_bool() const noexcept { return type() == Type::boolean; }
    bool is_integer() const noexcept { return type() == Type::integer; }
    bool is_real() const noexcept { return type() == Type::real; }
    bool is_string() const noexcept { return type() == Type::string; }
    bool is_array() const noexcept { return type() == Type::array; }
    bool is_object() const noexcept { return type() == Type::object; }

    // Scalars. The as_* accessors return a neutral value (false, 0, "") for another type; callers check first.
    bool as_bool() const noexcept;
    // Integers are kept exactly: signed 64-bit, or unsigned above INT64_MAX.
    bool integer_is_unsigned() const noexcept { return std::holds_alternative<std::uint64_t>(data_); }
    std::int64_t as_int64() const noexcept;
    std::uint64_t as_uint64() const noexcept;
    double as_double() const noexcept;
    // A JSON integer too large for 64 bits is kept as a real that remembers it was written as an integer.
    bool is_oversized_integer() const noexcept { return oversized_integer_; }
    const std::string &as_string() const noexcept;

    // Containers. size()/empty() count items or members (0 for scalars).
    std::size_t size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    const Array &items() const noexcept;
    const Object &members() const noexcept;
    Array &items();    // turns a null into an empty array
    Object &members();  // turns a null into an empty object

    // Object member lookup: nullptr when absent.
    const Value *find(std::string_view key) const noexcept;
    Value *find(std::string_view key) noexcept;
    // Read access in the jsoncpp style: a shared null for a missing key, a non-object or an index out of range.
    const Value &operator[](std::string_view key) const noexcept;
    const Value &operator[](std::size_t index) const noexcept;
    const Value &operator[](int index) const noexcept { return (*this)[static_cast<std::size_t>(index)]; }
    const Value &operator[](int index) noexcept { return std::as_const(*this)[static_cast<std::size_t>(index)]; }
    // Write access: sets or adds the member (a null becomes an object); keeps the order members were added in.
    // As with std::vector, a reference to a member or item is valid until the next one is added to that same
    // object or array.
    Value &operator[](std::string_view key);
    Value &operator[](const char *key) { return (*this)[std::string_view(key)]; }
    Value &operator[](const std::string &key) { return (*this)[std::string_view(key)]; }
    // Appends a member whose key the caller knows is new (no search: for building results). Returns its value.
    Value &add(std::string_view key, Value value);
    // Appends to an array (a null becomes an array); returns the new item.
    Value &append(Value item);
    bool remove(std::string_view key);

    // Overwrites every string's bytes (keys and values) in place, for documents that carried secrets.
    void wipe_strings() noexcept;

    friend bool operator==(const Value &a, const Value &b);

private:
    struct Null {
        friend bool operator==(Null, Null) { return true; }
    };
    using Data = std::variant<Null, bool, std::int64_t, std::uint64_t, double, std::string, Array, Object>;
    Data data_;
    bool oversized_integer_ = false;
    friend class ValueBuilder;
};

struct Member {
    std::string key;
    Value value;
    friend bool operator==(const Member &, const Member &) = default;
};

inline Value::Value() = default;
inline Value::Value(std::nullptr_t) {}
inline Value::Value(bool b) : data_(b) {}
inline Value::Value(int n) : data_(std::int64_t{n}) {}
inline Value::Value(long n) : data_(std::int64_t{n}) {}
inline Value::Value(long long n) : data_(std::int64_t{n}) {}
inline Value::Value(unsigned n) : data_(std::int64_t{n}) {}
inline Value::Value(double d) : data_(d) {}
inline Value::Value(const char *s) : data_(std::string(s)) {}
inline Value::Value(std::string s) : data_(std::move(s)) {}
inline Value::Value(std::string_view s) : data_(std::string(s)) {}
inline Value::Value(const Value &) = default;
inline Value::Value(Value &&) noexcept = default;
inline Value &Value::operator=(const Value &) = default;
inline Value &Value::operator=(Value &&) noexcept = default;
inline Value::~Value() = default;

// Limits a parse enforces, on top of RFC 8259 (no comments, no NaN/Infinity, one value, nothing after it).
struct ParseLimits {
    std::size_t max_bytes = 1 << 20;
    int max_depth = 32;
    bool reject_duplicate_keys = true;
};

struct ParseError {
    std::size_t offset = 0;
    std::string reason;  // never quotes the input
    bool invalid_utf8 = false;
};

// Parses `size` bytes at `text` (any bytes; invalid UTF-8 and NUL bytes are refused). text[size] must be a NUL
// (as in a C string or std::string): the reader's fast paths scan up to it. Exactly one result is set.
struct ParseResult {
    Value value;
    bool ok = false;
    ParseError error;
};
ParseResult parse(const char *text, std::size_t size, const ParseLimits &limits = {});
inline ParseResult parse(const std::string &text, const ParseLimits &limits = {}) {
    return parse(text.c_str(), text.size(), limits);
}

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) noexcept;

// Compact JSON text; non-ASCII UTF-8 is written as is, control characters escaped.
std::string write(const Value &value);

// The same text written event by event, for results made on every call: no Value tree is built for them.
// Calls must nest as JSON does (a key before each member's value); take() once the outermost value is closed.
class TextWriter {
public:
    TextWriter() { out_.resize(2048); }  // a device_info fits: no regrowth on the common path

    void start_object();
    void end_object();
    void start_array();
    void end_array();
    void key(std::string_view k);
    // A key the caller knows needs no escape (a literal of plain ASCII letters, digits and '_'): copied as is.
    void plain_key(std::string_view k) {
        const bool comma = after_value_;
        char *out = room(k.size() + 4);
        if (comma) *out++ = ',';
        *out++ = '"';
        std::memcpy(out, k.data(), k.size());
        out += k.size();
        *out++ = '"';
        *out++ = ':';
        end_ = static_cast<std::size_t>(out - out_.data());
        after_value_ = false;
    }
    void string(std::string_view s);
    void integer(std::int64_t n);
    void unsigned_integer(std::uint64_t n);
    void real(double d);  // finite only
    void boolean(bool b);
    void null();
    void value(const Value &v);  // a whole Value, as write() writes it
    std::string take();

private:
    void separate();  // the comma before a member or item that follows another
    void open(char bracket);
    void close(char bracket);
    // Room for n more bytes at end_; the bytes are then stored directly (std::string's append and push_back
    // re-terminated the string and checked its capacity on every byte written, most of a device_info's cost).
    char *room(std::size_t n) {
        if (out_.size() - end_ < n) out_.resize(std::max(out_.size() * 2, end_ + n));
        return out_.data() + end_;
    }
    void put(char c) { *room(1) = c, ++end_; }
    void put(const char *p, std::size_t n) {
        if (n != 0) std::memcpy(room(n), p, n);
        end_ += n;
    }

    std::string out_;       // written up to end_; its size is the room
    std::size_t end_ = 0;
    bool after_value_ = false;  // a value (or a whole container) was just written
};

}  // namespace ivd::json
