// Reading a request straight from its text: the values a request type reads (its schema's slots) are captured
// as the parser streams past them, as views into the parse's scratch copy; no tree is built. The request
// parsers then check the slots in a fixed order, so which error a document with several faults gets does not
// depend on its key order, as when they read a json::Value (which they still can: Fields::read walks one).
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/json_events.hpp"
#include "request/json_input.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>
#include <span>
#include <string_view>

namespace ivd::request {

// One captured value: a scalar's content, or a container's kind and size. Trivial, so that list storage needs
// no initialisation; a slot nothing was captured into reads as absent (present false).
struct Field {
    json::Type type;
    bool present;
    bool oversized_integer;  // a real that was written as an integer too large for 64 bits
    bool is_unsigned;        // an integer above INT64_MAX (in u)
    bool b;
    const char *chars;  // a string's bytes (not a string_view member: that would make Field non-trivial, and
    std::size_t length;  // every list slot would be initialised on every parse)
    std::int64_t i;
    std::uint64_t u;
    double d;
    std::size_t size;  // a container's items or members

    std::string_view text() const { return {chars, length}; }
    bool is_string() const { return type == json::Type::string; }
    bool is_array() const { return type == json::Type::array; }
    bool is_object() const { return type == json::Type::object; }
};

inline constexpr Field absent_field{json::Type::null, false, false, false, false, "", 0, 0, 0, 0, 0};

// The same view of a json::Value (strings stay in the Value; a container gives its type and size only).
Field field_of(const json::Value &v);

// "a string", "an integer too large for 64 bits", ...: what a value is, for "must be X, not Y" messages.
const char *type_name(const Field &f);

// A schema: slot 0 is the document (an object); every other slot is a key of its parent slot. Kinds:
//   scalar  the value's Field only;
//   object  its keys have slots of their own (parent: this slot);
//   list    the first max_list_items items are kept (list: which list store, 0..max_lists-1);
//   rows    a list of objects whose keys are this slot's children (list: which row store; each child's list:
//           its column, from 1; column 0 is the item itself);
//   value   the whole value is kept as a json::Value (list: which one, 0..max_kept-1), for report keys.
enum class SlotKind { scalar, object, list, rows, value };
struct Slot {
    int parent;
    std::string_view key;
    SlotKind kind = SlotKind::scalar;
    int list = -1;
};

inline constexpr std::size_t max_slots = 48;  // at most 64: captured_ is a bit mask
inline constexpr std::size_t max_lists = 3;
inline constexpr std::size_t max_list_items = 64;  // max_targets: longer lists are refused before items are read
inline constexpr std::size_t max_row_stores = 2;
inline constexpr std::size_t max_kept = 4;

// What a schema's parse looks up, worked out at compile time with the schema: which slot a (parent, key) pair
// names (open addressing on the key's length and three of its bytes; a linear match over 40 slots was ~4% of a
// connect) and each row store's width.
struct SchemaIndex {
    static constexpr std::size_t buckets = 128;  // more than twice max_slots: short probe runs
    std::array<std::uint8_t, buckets> slots{};   // 0: empty (slot 0 is the document, never a key)
    std::array<std::size_t, max_row_stores> row_width{};
};

constexpr std::size_t key_bucket(int parent, std::string_view k) {
    std::size_t h = static_cast<std::size_t>(parent) * 0x9E37u + k.size() * 0x85EBu;
    if (!k.empty()) {
        h += static_cast<unsigned char>(k.front()) * 0x1Fu + static_cast<unsigned char>(k[k.size() / 2]) * 0x3B9u +
             static_cast<unsigned char>(k.back()) * 0x27D5u;
    }
    return (h ^ (h >> 7) ^ (h >> 13)) & (SchemaIndex::buckets - 1);
}

constexpr SchemaIndex make_schema_index(std::span<const Slot> schema) {
    SchemaIndex index;
    for (std::size_t i = 1; i < schema.size(); ++i) {
        const Slot &slot = schema[i];
        std::size_t b = key_bucket(slot.parent, slot.key);
        while (index.slots[b] != 0) b = (b + 1) & (SchemaIndex::buckets - 1);
        index.slots[b] = static_cast<std::uint8_t>(i);
        const Slot &parent = schema[static_cast<std::size_t>(slot.parent)];
        if (parent.kind == SlotKind::rows) {
            const auto store = static_cast<std::size_t>(parent.list);
            const auto width = static_cast<std::size_t>(slot.list) + 1;
            if (index.row_width[store] < width) index.row_width[store] = width;
        }
    }
    return index;
}

class Fields final : public json::Events {
public:
    // `index` is make_schema_index(schema) (a constexpr next to the schema).
    Fields(std::span<const Slot> schema, const SchemaIndex &index);
    Fields(const Fields &) = delete;
    Fields &operator=(const Fields &) = delete;

    // The document's text, with parse_object's checks and errors (argument names it). NULL, and with null_ok
    // a JSON null, read as an empty object.
    Result<void> parse(const char *text, std::string_view argument, bool null_ok = false);
    // A document already parsed (its strings must outlive this).
    void read(const json::Value &document);

    const Field &raw(int slot) const {
        return (captured_ >> slot) & 1U ? values_[static_cast<std::size_t>(slot)] : absent_field;
    }
    // nullptr when absent or JSON null (Cinder sends null for unset optional keys), as member() does.
    const Field *get(int slot) const {
        const Field &f = raw(slot);
        return f.present && f.type != json::Type::null ? &f : nullptr;
    }
    // Item i of a list slot; absent past the items kept.
    const Field &item(int slot, std::size_t i) const;
    // Row i of a rows slot: the item itself (column_slot == rows_slot) or its member column_slot.
    const Field &row(int rows_slot, std::size_t i, int column_slot) const;
    // A value slot's value (null when absent).
    const json::Value &kept(int slot) const { return kept_[static_cast<std::size_t>(schema_[slot].list)]; }

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

private:
    struct Frame {
        Field *self;        // where the container's size goes (nullptr: not captured)
        int scope;          // the slot whose children are captured (-1: none)
        bool object;
        std::size_t items;  // array items seen
    };
    struct Target {
        Field *field = nullptr;
        int slot = -1;          // the schema slot the value fills (-1: a list item or nothing)
        bool row_item = false;  // an item of a rows list
    };
    Target target();  // where the value now arriving goes
    void put(const Field &f);
    void open(json::Type type);
    void close(std::size_t count);
    void walk(const json::Value &v);
    // Passes an event to the kept value being built (or starting here); false when none is.
    template <class Emit>
    bool keep(Emit emit, int nesting);

    std::span<const Slot> schema_;
    const SchemaIndex &index_;
    std::uint64_t captured_ = 1;    // bit i: values_[i] was written (the rest are absent, never initialised)
    std::array<Field, max_slots> values_;
    Field items_[max_lists][max_list_items];  // uninitialised: item() reads only what was stored
    std::array<std::vector<Field>, max_row_stores> rows_;
    std::array<json::Value, max_kept> kept_;
    std::optional<json::ValueBuilder> builder_;  // while a value slot's value is read
    int keeping_ = -1;                            // that slot
    int keep_depth_ = 0;
    std::array<Frame, 40> frames_;  // deeper than json's depth limit
    std::size_t depth_ = 0;
    Field *pending_field_ = nullptr;  // the member whose key came last
    int pending_slot_ = -1;
    json::ScratchText scratch_;
};

// Typed readers over a captured value; the json::Value readers in json_input.hpp are these.
Result<std::string> read_string(const Field &v, const Where &where, const StringRules &rules = {});
Result<bool> read_bool(const Field &v, const Where &where);
Result<std::int64_t> read_integer(const Field &v, const Where &where, std::int64_t min, std::int64_t max);
Result<bool> read_flexible_bool(const Field &v, const Where &where);
Result<std::int64_t> read_flexible_integer(const Field &v, const Where &where, std::int64_t min, std::int64_t max);

}  // namespace ivd::request
