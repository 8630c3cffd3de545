#include "core/json.hpp"

#include "core/secret.hpp"

#include "core/rapidjson_config.hpp"

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
    TextWriter writer;
    writer.value(value);
    return writer.take();
}

struct TextWriter::Impl {
    rapidjson::StringBuffer buffer{nullptr, 4096};  // a device_info fits: no regrowth on the common path
    rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
};

TextWriter::TextWriter() : impl_(std::make_unique<Impl>()) {}
TextWriter::~TextWriter() = default;
void TextWriter::start_object() { impl_->writer.StartObject(); }
void TextWriter::end_object() { impl_->writer.EndObject(); }
void TextWriter::start_array() { impl_->writer.StartArray(); }
void TextWriter::end_array() { impl_->writer.EndArray(); }
// RapidJSON wants a pointer even for an empty text (a default string_view has none).
void TextWriter::key(std::string_view k) {
    impl_->writer.Key(k.empty() ? "" : k.data(), static_cast<rapidjson::SizeType>(k.size()));
}
void TextWriter::string(std::string_view s) {
    impl_->writer.String(s.empty() ? "" : s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void TextWriter::integer(std::int64_t n) { impl_->writer.Int64(n); }
void TextWriter::boolean(bool b) { impl_->writer.Bool(b); }
void TextWriter::value(const Value &v) { emit(impl_->writer, v); }
std::string TextWriter::take() { return std::string(impl_->buffer.GetString(), impl_->buffer.GetSize()); }

}  // namespace ivd::json
