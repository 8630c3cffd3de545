#include "input_json.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>

namespace volume_host {

namespace {

ShimError input_error(const char *what, const std::string &why) {
    return ShimError{"input_error", fmt::format("{}: {}", what, why), exit_usage};
}

// Reads at most max_input_bytes + 1 bytes, so an oversized input is refused without reading it all.
std::string read_bounded(std::istream &in) {
    std::string out(max_input_bytes + 1, '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

// jsoncpp's first error as "Line L, Column C: reason", from its "* Line L, Column C\n  reason\n" text.
std::string first_reader_error(const std::string &errors) {
    std::string where;
    std::size_t start = 0;
    while (start < errors.size()) {
        const std::size_t nl = errors.find('\n', start);
        std::string piece = errors.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? errors.size() : nl + 1;
        piece.erase(0, piece.find_first_not_of(' '));
        if (piece.rfind("* ", 0) == 0) {
            where = piece.substr(2);
        } else if (!piece.empty() && piece.rfind("See ", 0) != 0) {
            return where.empty() ? piece : where + ": " + piece;
        }
    }
    return "not valid JSON";
}

}  // namespace

Outcome<std::string> read_input(const std::string &where, const char *what) {
    std::string text;
    if (where == "-") {
        text = read_bounded(std::cin);
    } else {
        std::ifstream in(where, std::ios::binary);
        if (!in) return ShimError{"input_error", fmt::format("{}: cannot read {}", what, where), exit_usage};
        text = read_bounded(in);
    }
    if (text.size() > max_input_bytes) {
        return input_error(what, fmt::format("larger than {} bytes", max_input_bytes));
    }
    return text;
}

int json_nesting_depth(std::string_view text, int limit) {
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size() && deepest <= limit; ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

std::size_t invalid_utf8_offset(std::string_view text) {
    const auto *s = reinterpret_cast<const unsigned char *>(text.data());
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned lo = 0x80;
        unsigned hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
        } else {
            return i;
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (std::size_t k = 2; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
        }
        i += len;
    }
    return std::string_view::npos;
}

Outcome<Json::Value> parse_json_object(std::string_view text, const char *what) {
    if (text.size() > max_input_bytes) return input_error(what, fmt::format("larger than {} bytes", max_input_bytes));
    if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
        return input_error(what, fmt::format("contains a NUL byte at offset {}", nul));
    }
    if (const auto bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
        return input_error(what, fmt::format("is not valid UTF-8 (offset {})", bad));
    }
    // Checked before jsoncpp, whose own stackLimit throws instead of failing the parse.
    if (json_nesting_depth(text, max_input_depth) > max_input_depth) {
        return input_error(what, fmt::format("nests arrays/objects deeper than {} levels", max_input_depth));
    }
    Json::CharReaderBuilder builder;
    Json::CharReaderBuilder::strictMode(&builder.settings_);  // no comments, strict root, dup keys refused
    builder["collectComments"] = false;
    builder["failIfExtra"] = true;
    builder["rejectDupKeys"] = true;
    builder["allowSpecialFloats"] = false;
    builder["stackLimit"] = max_input_depth * 2;  // the pre-check above is the limit; this only backs it up
    std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    Json::Value v;
    std::string errors;
    try {
        if (!reader->parse(text.data(), text.data() + text.size(), &v, &errors)) {
            return input_error(what, fmt::format("is not valid JSON: {}", first_reader_error(errors)));
        }
    } catch (const std::exception &e) {
        return input_error(what, fmt::format("is not valid JSON: {}", e.what()));
    }
    if (!v.isObject()) return input_error(what, "is not a JSON object");
    return v;
}

}  // namespace volume_host
