#include "iscsi/lu_identity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace ivd::iscsi {

namespace {

std::string to_hex(const std::string &bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    return out;
}

const char *type_name(int type) {
    switch (type) {
    case 0: return "vendor";
    case 1: return "t10";
    case 2: return "eui64";
    case 3: return "naa";
    case 4: return "relport";
    case 5: return "tpg";
    case 6: return "lug";
    case 7: return "md5";
    case 8: return "name";
    case 9: return "uuid";
    }
    return "other";
}

// Text designators as scsi_id prints them: trailing NULs and blanks dropped, inner blank runs become one '_'.
std::string text_form(const std::string &bytes) {
    std::string trimmed = bytes.substr(0, bytes.find('\0'));
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
    std::string out;
    bool blank = false;
    for (const char c : trimmed) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            blank = true;
            continue;
        }
        if (blank && !out.empty()) out += '_';
        blank = false;
        out += c;
    }
    return out;
}

std::string value_form(const Designator &d) {
    return d.code_set == 1 ? to_hex(d.bytes) : text_form(d.bytes);
}

// scsi_id's order among NAA formats: IEEE registered extended, IEEE registered, IEEE extended, locally assigned.
int naa_rank(const Designator &d) {
    if (d.bytes.empty() || d.code_set != 1) return 4;
    switch (static_cast<unsigned char>(d.bytes[0]) >> 4) {
    case 6: return 0;
    case 5: return 1;
    case 2: return 2;
    case 3: return 3;
    }
    return 4;
}

}  // namespace

LuIdentity lu_identity_from(const std::vector<Designator> &designators) {
    LuIdentity identity;
    const Designator *best_naa = nullptr;
    const Designator *eui = nullptr;
    const Designator *t10 = nullptr;
    const Designator *name = nullptr;
    for (const Designator &d : designators) {
        if (d.association != 0 || d.bytes.empty()) continue;
        identity.designators.push_back(fmt::format("{}:{}", type_name(d.type), to_hex(d.bytes)));
        switch (d.type) {
        case 3:
            if (best_naa == nullptr || naa_rank(d) < naa_rank(*best_naa)) best_naa = &d;
            break;
        case 2:
            if (eui == nullptr) eui = &d;
            break;
        case 1:
            if (t10 == nullptr) t10 = &d;
            break;
        case 8:
            if (name == nullptr) name = &d;
            break;
        default: break;
        }
    }
    std::sort(identity.designators.begin(), identity.designators.end());
    // The type digit first, as udev's scsi_id writes it (appended, not prepended: GCC 12 misreads
    // "3" + std::string as an overlapping copy under -O3).
    if (best_naa != nullptr) {
        identity.wwid = std::string("3").append(value_form(*best_naa));
    } else if (eui != nullptr) {
        identity.wwid = std::string("2").append(value_form(*eui));
    } else if (t10 != nullptr) {
        identity.wwid = std::string("1").append(text_form(t10->bytes));
    } else if (name != nullptr) {
        identity.wwid = std::string("8").append(text_form(name->bytes));
    }
    return identity;
}

}  // namespace ivd::iscsi
