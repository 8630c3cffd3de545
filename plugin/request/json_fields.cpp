#include "request/json_fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace ivd::request {

Field field_of(const json::Value &v) {
    Field f = absent_field;
    f.present = true;
    f.type = v.type();
    switch (f.type) {
    case json::Type::boolean: f.b = v.as_bool(); break;
    case json::Type::integer:
        f.is_unsigned = v.integer_is_unsigned();
        f.i = v.as_int64();
        f.u = v.as_uint64();
        break;
    case json::Type::real:
        f.d = v.as_double();
        f.oversized_integer = v.is_oversized_integer();
        break;
    case json::Type::string: f.chars = v.as_string().data();
        f.length = v.as_string().size(); break;
    case json::Type::array:
    case json::Type::object: f.size = v.size(); break;
    case json::Type::null: break;
    }
    return f;
}

const char *type_name(const Field &v) {
    switch (v.type) {
    case json::Type::null: return "null";
    case json::Type::integer: return "an integer";
    case json::Type::real: return v.oversized_integer ? "an integer too large for 64 bits"
                                                      : "a number with a fraction or exponent";
    case json::Type::string: return "a string";
    case json::Type::boolean: return "a boolean";
    case json::Type::array: return "a list";
    case json::Type::object: return "an object";
    }
    return "an unknown type";
}

// ---- capture --------------------------------------------------------------------------------------------------

Fields::Fields(std::span<const Slot> schema, const SchemaIndex &index) : schema_(schema), index_(index) {
    values_[0] = absent_field;
}

Result<void> Fields::parse(const char *text, std::string_view argument, bool null_ok) {
    const Where root{argument, {}};
    if (text == nullptr) {
        if (!null_ok) return invalid(root, "is required but was NULL");
        values_[0] = absent_field;
        values_[0].present = true;
        values_[0].type = json::Type::object;
        return {};
    }
    const std::size_t size = ::strnlen(text, max_document_bytes + 1);
    if (size > max_document_bytes) {
        return invalid(root, fmt::format("is larger than {} bytes", max_document_bytes));
    }
    json::ParseError error;
    const json::ParseLimits limits{.max_bytes = max_document_bytes, .max_depth = max_nesting_depth,
                                   .reject_duplicate_keys = true};
    if (!json::parse_events(text, size, limits, *this, scratch_, error)) {
        captured_ = 1;  // a key may have come without its value
        if (error.invalid_utf8) return invalid(root, "is not valid UTF-8");
        return invalid(root, fmt::format("is not valid JSON ({} at byte {})", error.reason, error.offset));
    }
    if (values_[0].type == json::Type::null && null_ok) {
        values_[0].type = json::Type::object;
        return {};
    }
    if (values_[0].type != json::Type::object) {
        return invalid(root, fmt::format("must be a JSON object, not {}", type_name(values_[0])));
    }
    return {};
}

void Fields::read(const json::Value &document) { walk(document); }

void Fields::walk(const json::Value &v) {
    switch (v.type()) {
    case json::Type::array:
        start_array();
        for (const json::Value &item : v.items()) walk(item);
        end_array(v.size());
        return;
    case json::Type::object:
        start_object();
        for (const json::Member &m : v.members()) {
            key(m.key);
            walk(m.value);
        }
        end_object(v.size());
        return;
    case json::Type::null: return null();
    case json::Type::boolean: return boolean(v.as_bool());
    case json::Type::integer: return v.integer_is_unsigned() ? unsigned_integer(v.as_uint64()) : integer(v.as_int64());
    case json::Type::real: return real(v.as_double(), v.is_oversized_integer());
    case json::Type::string: return string(v.as_string());
    }
}

const Field &Fields::item(int slot, std::size_t i) const {
    const Field &list = raw(slot);
    const int store = schema_[static_cast<std::size_t>(slot)].list;
    if (store < 0 || !list.is_array() || i >= std::min(list.size, max_list_items)) return absent_field;
    return items_[store][i];
}

const Field &Fields::row(int rows_slot, std::size_t i, int column_slot) const {
    const auto store = static_cast<std::size_t>(schema_[static_cast<std::size_t>(rows_slot)].list);
    const std::size_t width = index_.row_width[store];
    const std::size_t column = column_slot == rows_slot ? 0 : static_cast<std::size_t>(schema_[column_slot].list);
    if ((i + 1) * width > rows_[store].size()) return absent_field;
    return rows_[store][i * width + column];
}

Fields::Target Fields::target() {
    if (depth_ == 0) return {&values_[0], 0, false};
    Frame &top = frames_[depth_ - 1];
    if (top.object) {
        const Target t{pending_field_, pending_slot_, false};
        pending_field_ = nullptr;
        pending_slot_ = -1;
        return t;
    }
    const std::size_t index = top.items++;
    if (top.scope < 0) return {};
    const Slot &list = schema_[static_cast<std::size_t>(top.scope)];
    if (list.kind == SlotKind::rows) {  // a new row, every column absent until its key comes
        std::vector<Field> &rows = rows_[static_cast<std::size_t>(list.list)];
        const std::size_t width = index_.row_width[static_cast<std::size_t>(list.list)];
        if (rows.empty()) rows.reserve(width * 4);
        rows.resize(rows.size() + width, absent_field);
        return {&rows[rows.size() - width], top.scope, true};
    }
    if (index >= max_list_items) return {};
    return {&items_[list.list][index], -1, false};
}

void Fields::put(const Field &f) {
    if (Field *t = target().field) *t = f;
}

// A value slot's value goes to a ValueBuilder: from the event that starts it (its key came last) to the one
// that closes it (nesting back at 0).
template <class Emit>
bool Fields::keep(Emit emit, int nesting) {
    if (keeping_ < 0) {
        if (pending_slot_ < 0 || depth_ == 0 || !frames_[depth_ - 1].object ||
            schema_[static_cast<std::size_t>(pending_slot_)].kind != SlotKind::value) {
            return false;
        }
        keeping_ = pending_slot_;
        pending_field_ = nullptr;
        pending_slot_ = -1;
        builder_.emplace();
        keep_depth_ = 0;
    }
    emit(*builder_);
    keep_depth_ += nesting;
    if (keep_depth_ > 0) return true;
    json::Value &kept = kept_[static_cast<std::size_t>(schema_[static_cast<std::size_t>(keeping_)].list)];
    kept = builder_->take();
    values_[static_cast<std::size_t>(keeping_)] = field_of(kept);
    builder_.reset();
    keeping_ = -1;
    return true;
}

namespace {

Field scalar(json::Type type) {
    Field f = absent_field;
    f.present = true;
    f.type = type;
    return f;
}

}  // namespace

void Fields::null() {
    if (!keep([](json::Events &e) { e.null(); }, 0)) put(scalar(json::Type::null));
}

void Fields::boolean(bool b) {
    if (keep([&](json::Events &e) { e.boolean(b); }, 0)) return;
    Field f = scalar(json::Type::boolean);
    f.b = b;
    put(f);
}

void Fields::integer(std::int64_t n) {
    if (keep([&](json::Events &e) { e.integer(n); }, 0)) return;
    Field f = scalar(json::Type::integer);
    f.i = n;
    f.u = static_cast<std::uint64_t>(n);
    put(f);
}

void Fields::unsigned_integer(std::uint64_t n) {
    if (keep([&](json::Events &e) { e.unsigned_integer(n); }, 0)) return;
    Field f = scalar(json::Type::integer);
    f.is_unsigned = true;
    f.i = static_cast<std::int64_t>(n);
    f.u = n;
    put(f);
}

void Fields::real(double d, bool oversized_integer) {
    if (keep([&](json::Events &e) { e.real(d, oversized_integer); }, 0)) return;
    Field f = scalar(json::Type::real);
    f.d = d;
    f.oversized_integer = oversized_integer;
    put(f);
}

void Fields::string(std::string_view s) {
    if (keep([&](json::Events &e) { e.string(s); }, 0)) return;
    Field f = scalar(json::Type::string);
    f.chars = s.data();
    f.length = s.size();
    put(f);
}

void Fields::key(std::string_view k) {
    if (keeping_ >= 0) {
        keep([&](json::Events &e) { e.key(k); }, 0);
        return;
    }
    pending_field_ = nullptr;
    pending_slot_ = -1;
    const int scope = depth_ == 0 ? -1 : frames_[depth_ - 1].scope;
    if (scope < 0) return;
    for (std::size_t b = key_bucket(scope, k);; b = (b + 1) & (SchemaIndex::buckets - 1)) {
        const std::size_t i = index_.slots[b];
        if (i == 0) return;  // no slot: a key the schema does not read
        const Slot &s = schema_[i];
        if (s.parent != scope || s.key.size() != k.size() || std::memcmp(s.key.data(), k.data(), k.size()) != 0) continue;
        pending_slot_ = static_cast<int>(i);
        const Slot &parent = schema_[static_cast<std::size_t>(scope)];
        if (parent.kind == SlotKind::rows) {  // a member of the row being read
            std::vector<Field> &rows = rows_[static_cast<std::size_t>(parent.list)];
            const std::size_t width = index_.row_width[static_cast<std::size_t>(parent.list)];
            pending_field_ = &rows[rows.size() - width + static_cast<std::size_t>(s.list)];
        } else {
            pending_field_ = &values_[i];
            captured_ |= std::uint64_t{1} << i;  // the value that follows writes it
        }
        return;
    }
}

void Fields::start_object() {
    if (!keep([](json::Events &e) { e.start_object(); }, 1)) open(json::Type::object);
}

void Fields::start_array() {
    if (!keep([](json::Events &e) { e.start_array(); }, 1)) open(json::Type::array);
}

void Fields::end_object(std::size_t members) {
    if (!keep([&](json::Events &e) { e.end_object(members); }, -1)) close(members);
}

void Fields::end_array(std::size_t items) {
    if (!keep([&](json::Events &e) { e.end_array(items); }, -1)) close(items);
}

void Fields::open(json::Type type) {
    const Target t = target();
    if (t.field != nullptr) *t.field = scalar(type);
    int scope = -1;
    if (t.slot >= 0) {
        const SlotKind kind = t.slot == 0 ? SlotKind::object : schema_[static_cast<std::size_t>(t.slot)].kind;
        const bool object = type == json::Type::object;
        if ((kind == SlotKind::object && object) || (kind == SlotKind::list && !object) ||
            (kind == SlotKind::rows && object == t.row_item)) {
            scope = t.slot;
        }
    }
    frames_[depth_++] = Frame{t.field, scope, type == json::Type::object, 0};
}

void Fields::close(std::size_t count) {
    Frame &top = frames_[--depth_];
    if (top.self != nullptr) top.self->size = count;
    pending_field_ = nullptr;
    pending_slot_ = -1;
}

// ---- typed readers --------------------------------------------------------------------------------------------

Result<std::string> read_string(const Field &v, const Where &where, const StringRules &rules) {
    if (!v.is_string()) return invalid(where, fmt::format("must be a string, not {}", type_name(v)));
    const std::string_view s = v.text();
    if (s.empty() && !rules.allow_empty) return invalid(where, "must not be empty");
    if (s.size() > rules.max_bytes) {
        return invalid(where, fmt::format("is {} bytes long; at most {} are allowed", s.size(), rules.max_bytes));
    }
    // Printable ASCII (nearly every value) passes the checks below: one pass over the bytes instead of four,
    // without an early exit so that the compiler checks 16 bytes a step.
    unsigned char outside = 0;
    for (const char ch : s) outside |= static_cast<unsigned char>(static_cast<unsigned char>(ch - 0x20) > 0x5E);  // 0x20..0x7E
    if (outside == 0) return std::string(s);
    if (!is_valid_utf8(s)) return invalid(where, "is not valid UTF-8");
    if (!rules.allow_control) {
        for (const char ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            if (c < 0x20 || c == 0x7F) return invalid(where, "contains a control character");
        }
        // U+FFFE and U+FFFF are valid UTF-8 but not XML characters: libvirt could not parse a disk carrying them.
        if (s.find("\xEF\xBF\xBE") != std::string_view::npos || s.find("\xEF\xBF\xBF") != std::string_view::npos) {
            return invalid(where, "contains U+FFFE or U+FFFF, which XML cannot carry");
        }
    }
    return std::string(s);
}

Result<bool> read_bool(const Field &v, const Where &where) {
    if (v.type != json::Type::boolean) return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
    return v.b;
}

Result<std::int64_t> read_integer(const Field &v, const Where &where, std::int64_t min, std::int64_t max) {
    if (v.oversized_integer) return invalid(where, fmt::format("is out of range [{}, {}]", min, max));
    if (v.type != json::Type::integer) return invalid(where, fmt::format("must be an integer, not {}", type_name(v)));
    if (v.is_unsigned) return invalid(where, fmt::format("is out of range [{}, {}]", min, max));
    const std::int64_t n = v.i;
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

Result<bool> read_flexible_bool(const Field &v, const Where &where) {
    if (v.type == json::Type::boolean) return v.b;
    if (v.is_string()) {
        std::string s(v.text());
        for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
        if (s == "false" || s == "no" || s == "off" || s == "0") return false;
        return invalid(where, fmt::format("must be true or false, not {}", quote_for_message(v.text())));
    }
    return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
}

Result<std::int64_t> read_flexible_integer(const Field &v, const Where &where, std::int64_t min, std::int64_t max) {
    if (!v.is_string()) return read_integer(v, where, min, max);
    const std::string_view s = v.text();
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) {
        return invalid(where, fmt::format("must be a whole number, not {}", quote_for_message(s)));
    }
    // from_chars, not stoll: 19 digits can exceed INT64_MAX, and stoll would throw past the field name.
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) {
        return invalid(where, fmt::format("{} is out of range [{}, {}]", quote_for_message(s), min, max));
    }
    if (ec != std::errc() || end != s.data() + s.size()) {
        return invalid(where, fmt::format("must be a whole number, not {}", quote_for_message(s)));
    }
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

}  // namespace ivd::request
