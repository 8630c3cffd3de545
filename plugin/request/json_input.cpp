#include "request/json_input.hpp"

#include <json/reader.h>

#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <sstream>

namespace ivd::request {

Where Where::key(std::string_view name) const {
    return Where{argument, path.empty() ? std::string(name) : path + "." + std::string(name)};
}

Where Where::index(std::size_t i) const { return Where{argument, fmt::format("{}[{}]", path, i)}; }

Error invalid(const Where &where, std::string_view reason, Status status) {
    std::string message = where.path.empty() ? fmt::format("{}: {}", where.argument, reason)
                                             : fmt::format("{} {}: {}", where.argument, where.path, reason);
    return make_error(status, std::move(message), std::string(where.argument), where.path);
}

namespace {

const Json::CharReaderBuilder &strict_builder() {
    static const Json::CharReaderBuilder builder = [] {
        Json::CharReaderBuilder b;
        Json::CharReaderBuilder::strictMode(&b.settings_);
        b.settings_["stackLimit"] = max_nesting_depth;
        b.settings_["rejectDupKeys"] = true;
        b.settings_["failIfExtra"] = true;
        b.settings_["allowSpecialFloats"] = false;
        return b;
    }();
    return builder;
}

const char *type_name(const Json::Value &v) {
    switch (v.type()) {
    case Json::nullValue: return "null";
    case Json::intValue:
    case Json::uintValue: return "an integer";
    case Json::realValue: return "a number with a fraction or exponent";
    case Json::stringValue: return "a string";
    case Json::booleanValue: return "a boolean";
    case Json::arrayValue: return "a list";
    case Json::objectValue: return "an object";
    }
    return "an unknown type";
}

// jsoncpp skips comments even with allowComments off; JSON has no '/' outside strings, so find one.
bool has_comment(std::string_view text) {
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '/') {
            return true;
        }
    }
    return false;
}

}  // namespace

Result<Json::Value> parse_object(const char *text, std::string_view argument, bool null_ok) {
    const Where root{argument, {}};
    if (text == nullptr) {
        if (null_ok) return Json::Value(Json::objectValue);
        return invalid(root, "is required but was NULL");
    }
    const std::size_t size = ::strnlen(text, max_document_bytes + 1);
    if (size > max_document_bytes) {
        return invalid(root, fmt::format("is larger than {} bytes", max_document_bytes));
    }
    if (!is_valid_utf8({text, size})) return invalid(root, "is not valid UTF-8");
    if (has_comment({text, size})) return invalid(root, "is not valid JSON (comments are not allowed)");

    Json::Value value;
    std::string errors;
    bool ok = false;
    try {
        const std::unique_ptr<Json::CharReader> reader(strict_builder().newCharReader());
        ok = reader->parse(text, text + size, &value, &errors);
    } catch (const std::exception &e) {
        // jsoncpp throws when the nesting limit is exceeded.
        errors = e.what();
        ok = false;
    }
    if (!ok) {
        // jsoncpp's messages quote input text; keep only the first line, which names the position.
        const auto newline = errors.find('\n');
        if (newline != std::string::npos) errors.resize(newline);
        if (errors.size() > 200) errors.resize(200);
        return invalid(root, fmt::format("is not valid JSON ({})", errors));
    }
    if (value.isNull() && null_ok) return Json::Value(Json::objectValue);
    if (!value.isObject()) return invalid(root, fmt::format("must be a JSON object, not {}", type_name(value)));
    return value;
}

const Json::Value *member(const Json::Value &object, std::string_view key) {
    if (!object.isObject()) return nullptr;
    const Json::Value *found = object.find(key.data(), key.data() + key.size());
    if (found == nullptr || found->isNull()) return nullptr;
    return found;
}

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    while (i < s.size()) {
        const unsigned char c = p[i];
        std::size_t extra = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
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
        if (i + extra >= s.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= extra; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            return false;
        }
        i += extra + 1;
    }
    return true;
}

std::string quote_for_message(std::string_view value) {
    constexpr std::size_t limit = 64;
    std::string out = "'";
    for (std::size_t i = 0; i < value.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c < 0x20 || c == 0x7F || c >= 0x80) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    out += value.size() > limit ? "'..." : "'";
    return out;
}

Result<std::string> read_string(const Json::Value &v, const Where &where, const StringRules &rules) {
    if (!v.isString()) return invalid(where, fmt::format("must be a string, not {}", type_name(v)));
    const char *begin = nullptr;
    const char *end = nullptr;
    v.getString(&begin, &end);
    const std::string_view s(begin, static_cast<std::size_t>(end - begin));
    if (s.empty() && !rules.allow_empty) return invalid(where, "must not be empty");
    if (s.size() > rules.max_bytes) {
        return invalid(where, fmt::format("is {} bytes long; at most {} are allowed", s.size(), rules.max_bytes));
    }
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

Result<bool> read_bool(const Json::Value &v, const Where &where) {
    if (!v.isBool()) return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
    return v.asBool();
}

Result<std::int64_t> read_integer(const Json::Value &v, const Where &where, std::int64_t min, std::int64_t max) {
    if (v.type() != Json::intValue && v.type() != Json::uintValue) {
        return invalid(where, fmt::format("must be an integer, not {}", type_name(v)));
    }
    if (v.type() == Json::uintValue && v.asUInt64() > static_cast<std::uint64_t>(max)) {
        return invalid(where, fmt::format("is out of range [{}, {}]", min, max));
    }
    const std::int64_t n = v.type() == Json::intValue ? v.asInt64() : static_cast<std::int64_t>(v.asUInt64());
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

Result<bool> read_flexible_bool(const Json::Value &v, const Where &where) {
    if (v.isBool()) return v.asBool();
    if (v.isString()) {
        std::string s = v.asString();
        for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
        if (s == "false" || s == "no" || s == "off" || s == "0") return false;
        return invalid(where, fmt::format("must be true or false, not {}", quote_for_message(v.asString())));
    }
    return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
}

Result<std::int64_t> read_flexible_integer(const Json::Value &v, const Where &where, std::int64_t min,
                                           std::int64_t max) {
    if (!v.isString()) return read_integer(v, where, min, max);
    const std::string s = v.asString();
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
        return invalid(where, fmt::format("must be a whole number, not {}", quote_for_message(s)));
    }
    const std::int64_t n = std::stoll(s);
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

}  // namespace ivd::request
