// connection_info: read from the captured fields (json_fields.hpp), from text on the call path or from a
// json::Value. The checks run in a fixed order: driver_volume_type -> data -> targets -> addressing -> CHAP ->
// identity -> the disk's options.
#include "request/volume_request.hpp"

#include "request/iscsi_name.hpp"
#include "request/json_fields.hpp"
#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace ivd::request {

namespace {

constexpr std::string_view ci = "connection_info";

// The slots of connection_info. The 13 qos_specs keys follow qos_first in qos_keys' order.
enum S : int {
    root, driver_volume_type, top_multiattach, data,
    target_portal, target_iqn, target_lun, target_portals, target_iqns, target_luns, addressing_mode,
    auth_method, auth_username, auth_password, discovery_auth_method, discovery_auth_username,
    discovery_auth_password, volume_id, access_mode, encrypted, discard, data_multiattach, logical_block_size,
    physical_block_size, qos_specs, qos_first
};

constexpr std::array<std::string_view, 13> qos_keys = {
    "total_bytes_sec",     "read_bytes_sec",     "write_bytes_sec",     "total_iops_sec",
    "read_iops_sec",       "write_iops_sec",     "total_bytes_sec_max", "read_bytes_sec_max",
    "write_bytes_sec_max", "total_iops_sec_max", "read_iops_sec_max",   "write_iops_sec_max",
    "size_iops_sec"};

constexpr auto schema = [] {
    std::array<Slot, qos_first + qos_keys.size()> s{};
    s[root] = {-1, ""};
    s[driver_volume_type] = {root, "driver_volume_type"};
    s[top_multiattach] = {root, "multiattach"};
    s[data] = {root, "data", SlotKind::object};
    const std::pair<S, std::string_view> data_keys[] = {
        {target_portal, "target_portal"}, {target_iqn, "target_iqn"}, {target_lun, "target_lun"},
        {addressing_mode, "addressing_mode"}, {auth_method, "auth_method"}, {auth_username, "auth_username"},
        {auth_password, "auth_password"}, {discovery_auth_method, "discovery_auth_method"},
        {discovery_auth_username, "discovery_auth_username"}, {discovery_auth_password, "discovery_auth_password"},
        {volume_id, "volume_id"}, {access_mode, "access_mode"}, {encrypted, "encrypted"}, {discard, "discard"},
        {data_multiattach, "multiattach"}, {logical_block_size, "logical_block_size"},
        {physical_block_size, "physical_block_size"}};
    for (const auto &[slot, key] : data_keys) s[slot] = {data, key};
    s[target_portals] = {data, "target_portals", SlotKind::list, 0};
    s[target_iqns] = {data, "target_iqns", SlotKind::list, 1};
    s[target_luns] = {data, "target_luns", SlotKind::list, 2};
    s[qos_specs] = {data, "qos_specs", SlotKind::object};
    for (std::size_t i = 0; i < qos_keys.size(); ++i) s[qos_first + i] = {qos_specs, qos_keys[i]};
    return s;
}();
static_assert(schema.size() <= max_slots);
constexpr SchemaIndex schema_index = make_schema_index(schema);

std::string lowercase(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Result<Portal> read_portal(const Field &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 300});
    if (!s) return std::move(s).error();
    auto portal = parse_portal(*s);
    if (!portal) return invalid(where, fmt::format("{} is not a valid portal: {}", quote_for_message(*s), portal.error().message));
    return portal;
}

Result<std::int64_t> read_lun(const Field &v, const Where &where) { return read_integer(v, where, 0, max_lun); }

// A list member: present, a non-empty array, not longer than max_targets.
Result<const Field *> read_list(const Fields &f, int slot, const Where &data_where) {
    const Field *list = f.get(slot);
    if (list == nullptr) return static_cast<const Field *>(nullptr);
    const Where where = data_where.key(schema[slot].key);
    if (!list->is_array()) return invalid(where, "must be a list");
    if (list->size == 0) return invalid(where, "must not be an empty list");
    if (list->size > max_targets) {
        return invalid(where, fmt::format("has {} entries; at most {} are supported", list->size, max_targets));
    }
    return list;
}

// CHAP settings: auth_* or discovery_auth_* (method, username, password slots in a row).
Result<std::optional<ChapCredentials>> read_chap(const Fields &f, const Where &data_where, S method_slot) {
    const std::string_view method_key = schema[method_slot].key;
    const std::string_view user_key = schema[method_slot + 1].key;
    const std::string_view password_key = schema[method_slot + 2].key;
    bool chap = false;
    if (const Field *m = f.get(method_slot)) {
        auto method = read_string(*m, data_where.key(method_key), {.max_bytes = 16, .allow_empty = true});
        if (!method) return std::move(method).error();
        const std::string lowered = lowercase(*method);
        if (lowered == "chap") {
            chap = true;
        } else if (!(lowered.empty() || lowered == "none")) {
            return invalid(data_where.key(method_key),
                           fmt::format("{} is not supported; use \"CHAP\" or \"None\"", quote_for_message(*method)));
        }
    }
    const Field *user = f.get(method_slot + 1);
    const Field *password = f.get(method_slot + 2);
    if (!chap) {
        if (user != nullptr || password != nullptr) {
            const std::string_view given = user != nullptr ? user_key : password_key;
            return invalid(data_where.key(given), fmt::format("is set but {} is not \"CHAP\"", method_key));
        }
        return std::optional<ChapCredentials>{};
    }
    if (user == nullptr) return invalid(data_where.key(user_key), fmt::format("is required when {} is CHAP", method_key));
    if (password == nullptr) {
        return invalid(data_where.key(password_key), fmt::format("is required when {} is CHAP", method_key));
    }
    auto username = read_string(*user, data_where.key(user_key), {.max_bytes = 255});
    if (!username) return std::move(username).error();
    // Never echo the password: only its type and length are checked here.
    const Where pw_where = data_where.key(password_key);
    if (!password->is_string()) return invalid(pw_where, "must be a string");
    const std::string_view pw = password->text();
    if (pw.empty()) return invalid(pw_where, "must not be empty");
    if (pw.size() > 255) return invalid(pw_where, "is longer than 255 bytes");
    if (!is_valid_utf8(pw)) return invalid(pw_where, "is not valid UTF-8");
    if (pw.find('\0') != std::string_view::npos) return invalid(pw_where, "contains a NUL byte");
    return std::optional<ChapCredentials>(ChapCredentials{std::move(username).value(), SecretString(pw)});
}

Result<QosLimits> read_qos(const Fields &f, const Where &data_where) {
    QosLimits limits;
    const Field *specs = f.get(qos_specs);
    if (specs == nullptr) return limits;
    const Where where = data_where.key("qos_specs");
    if (!specs->is_object()) return invalid(where, "must be an object");
    for (std::size_t i = 0; i < qos_keys.size(); ++i) {
        const Field *v = f.get(static_cast<int>(qos_first + i));
        if (v == nullptr) continue;
        // Cinder's qos specs carry numbers as strings; both are taken, and must be whole and non-negative.
        auto n = read_flexible_integer(*v, where.key(qos_keys[i]), 0, INT64_MAX);
        if (!n) return std::move(n).error();
        if (*n > 0) limits.emplace_back(std::string(qos_keys[i]), static_cast<std::uint64_t>(*n));
    }
    // libvirt refuses a total limit together with a read or write limit of the same kind.
    auto has = [&](std::string_view k) {
        return std::any_of(limits.begin(), limits.end(), [&](const auto &p) { return p.first == k; });
    };
    for (const std::string_view kind : {"bytes_sec", "iops_sec", "bytes_sec_max", "iops_sec_max"}) {
        const std::string total = fmt::format("total_{}", kind);
        for (const std::string_view rw : {"read_", "write_"}) {
            const std::string other = fmt::format("{}{}", rw, kind);
            if (has(total) && has(other)) {
                return invalid(where.key(other), fmt::format("cannot be combined with {}", total));
            }
        }
    }
    return limits;
}

Result<void> check_volume_type(const Fields &f, const Where &root_where) {
    const Field *type = f.get(driver_volume_type);
    if (type == nullptr) return invalid(root_where.key("driver_volume_type"), "is required");
    auto type_name = read_string(*type, root_where.key("driver_volume_type"), {.max_bytes = 64});
    if (!type_name) return std::move(type_name).error();
    if (*type_name != "iscsi") {
        return invalid(root_where.key("driver_volume_type"),
                       fmt::format("{} is not served by this driver (it serves \"iscsi\")", quote_for_message(*type_name)));
    }
    return {};
}

// target_portal / target_iqn / target_lun: validated whenever present, even when lists take precedence.
struct SingleTarget {
    std::optional<Portal> portal;
    std::optional<std::string> iqn;
    std::int64_t lun = 0;
};

Result<SingleTarget> read_single_target(const Fields &f, const Where &dw) {
    SingleTarget single;
    if (const Field *v = f.get(target_portal)) {
        auto p = read_portal(*v, dw.key("target_portal"));
        if (!p) return std::move(p).error();
        single.portal = std::move(p).value();
    }
    if (const Field *v = f.get(target_iqn)) {
        auto n = read_iscsi_name(*v, dw.key("target_iqn"));
        if (!n) return std::move(n).error();
        single.iqn = std::move(n).value();
    }
    if (const Field *v = f.get(target_lun)) {
        auto l = read_lun(*v, dw.key("target_lun"));
        if (!l) return std::move(l).error();
        single.lun = *l;
    }
    return single;
}

struct TargetLists {
    const Field *portals = nullptr;
    const Field *iqns = nullptr;
    const Field *luns = nullptr;
};

// Cinder repeats target_portal / target_iqn as the lists' first entries, and multipath backends often list one
// IQN for every portal: a text already accepted is taken as it was (its checks depend on the text alone).
template <class Value, class FromTarget>
const Value *accepted_before(const Field &entry, const Fields &f, int single_slot, const std::optional<Value> &single,
                             int list_slot, const std::vector<Target> &earlier, FromTarget from_target) {
    if (!entry.is_string()) return nullptr;
    if (const Field *s = f.get(single_slot); single && s != nullptr && s->text() == entry.text()) return &*single;
    for (std::size_t j = 0; j < earlier.size(); ++j) {
        if (f.item(list_slot, j).text() == entry.text()) return &from_target(earlier[j]);
    }
    return nullptr;
}

// Entry i of the lists (target_iqn / target_lun standing in for a missing list, as os-brick does).
Result<Target> list_entry(const Fields &f, const TargetLists &lists, const SingleTarget &single, std::size_t i,
                          const std::vector<Target> &earlier, const Where &dw) {
    Target t;
    const Field &portal = f.item(target_portals, i);
    if (const Portal *same = accepted_before(portal, f, target_portal, single.portal, target_portals, earlier,
                                             [](const Target &e) -> const Portal & { return e.portal; })) {
        t.portal = *same;
    } else {
        auto p = read_portal(portal, dw.key("target_portals").index(i));
        if (!p) return std::move(p).error();
        t.portal = std::move(p).value();
    }
    if (lists.iqns != nullptr) {
        const Field &iqn = f.item(target_iqns, i);
        if (const std::string *same = accepted_before(iqn, f, target_iqn, single.iqn, target_iqns, earlier,
                                                      [](const Target &e) -> const std::string & { return e.iqn; })) {
            t.iqn = *same;
        } else {
            auto q = read_iscsi_name(iqn, dw.key("target_iqns").index(i));
            if (!q) return std::move(q).error();
            t.iqn = std::move(q).value();
        }
    } else {
        t.iqn = *single.iqn;
    }
    if (lists.luns != nullptr) {
        auto l = read_lun(f.item(target_luns, i), dw.key("target_luns").index(i));
        if (!l) return std::move(l).error();
        t.lun = *l;
    } else {
        t.lun = single.lun;  // one LUN for every portal, as os-brick does
    }
    return t;
}

// target_portals / target_iqns / target_luns: equal lengths (os-brick would silently truncate), no repeats.
Result<std::vector<Target>> read_target_lists(const Fields &f, const TargetLists &lists, const SingleTarget &single,
                                              const Where &dw) {
    const std::size_t n = lists.portals->size;
    if (lists.iqns == nullptr && !single.iqn) {
        return invalid(dw.key("target_iqns"), "is required with target_portals (or give target_iqn for all)");
    }
    if (lists.iqns != nullptr && lists.iqns->size != n) {
        return invalid(dw.key("target_iqns"), fmt::format("has {} entries but target_portals has {}", lists.iqns->size, n));
    }
    if (lists.luns != nullptr && lists.luns->size != n) {
        return invalid(dw.key("target_luns"), fmt::format("has {} entries but target_portals has {}", lists.luns->size, n));
    }
    std::vector<Target> targets;
    targets.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto t = list_entry(f, lists, single, i, targets, dw);
        if (!t) return std::move(t).error();
        for (std::size_t j = 0; j < targets.size(); ++j) {
            if (targets[j] == *t) {
                return invalid(dw.key("target_portals").index(i),
                               fmt::format("repeats the target of target_portals[{}] (same portal, IQN and LUN)", j));
            }
        }
        targets.push_back(std::move(t).value());
    }
    return targets;
}

Result<void> read_targets(const Fields &f, const Where &dw, VolumeRequest &request) {
    auto single = read_single_target(f, dw);
    if (!single) return std::move(single).error();
    TargetLists lists;
    for (const auto &[slot, out] : {std::pair{target_portals, &lists.portals}, std::pair{target_iqns, &lists.iqns},
                                    std::pair{target_luns, &lists.luns}}) {
        auto list = read_list(f, slot, dw);
        if (!list) return std::move(list).error();
        *out = *list;
    }
    if (lists.portals != nullptr) {
        auto targets = read_target_lists(f, lists, *single, dw);
        if (!targets) return std::move(targets).error();
        request.targets = std::move(targets).value();
        request.targets_from_lists = true;
        return {};
    }
    if (lists.iqns != nullptr) return invalid(dw.key("target_portals"), "is required with target_iqns");
    if (lists.luns != nullptr) return invalid(dw.key("target_portals"), "is required with target_luns");
    if (!single->portal) return invalid(dw.key("target_portal"), "is required (or give target_portals)");
    if (!single->iqn) return invalid(dw.key("target_iqn"), "is required (or give target_iqns)");
    request.targets.push_back(Target{*single->portal, *single->iqn, single->lun});
    return {};
}

Result<void> read_identity(const Fields &f, const Where &dw, VolumeRequest &request) {
    if (const Field *v = f.get(volume_id)) {
        // The volume id becomes the disk's serial: libvirt allows only these characters there.
        auto id = read_string(*v, dw.key("volume_id"), {.max_bytes = 128});
        if (!id) return std::move(id).error();
        for (const char c : *id) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != '+') {
                return invalid(dw.key("volume_id"),
                               fmt::format("{} may contain only letters, digits, '-', '_', '.' and '+'",
                                           quote_for_message(*id)));
            }
        }
        request.volume_id = std::move(id).value();
    }
    if (const Field *v = f.get(access_mode)) {
        auto mode = read_string(*v, dw.key("access_mode"), {.max_bytes = 8});
        if (!mode) return std::move(mode).error();
        if (*mode == "rw") {
            request.access_mode = AccessMode::read_write;
        } else if (*mode == "ro") {
            request.access_mode = AccessMode::read_only;
        } else {
            return invalid(dw.key("access_mode"), fmt::format("{} must be \"rw\" or \"ro\"", quote_for_message(*mode)));
        }
    }
    return {};
}

// What the guest's disk carries: encrypted, discard, multiattach (top level or in data), block sizes, QoS.
Result<void> read_disk_options(const Fields &f, const Where &root_where, VolumeRequest &request) {
    const Where dw = root_where.key("data");
    for (const auto &[slot, field] : {std::pair{encrypted, &request.encrypted}, std::pair{discard, &request.discard}}) {
        if (const Field *v = f.get(slot)) {
            auto b = read_bool(*v, dw.key(schema[slot].key));
            if (!b) return std::move(b).error();
            *field = *b;
        }
    }
    for (const auto &[where, slot] : {std::pair{root_where.key("multiattach"), top_multiattach},
                                      std::pair{dw.key("multiattach"), data_multiattach}}) {
        if (const Field *v = f.get(slot)) {
            auto b = read_bool(*v, where);
            if (!b) return std::move(b).error();
            request.multiattach = request.multiattach || *b;
        }
    }
    for (const auto &[slot, field] : {std::pair{logical_block_size, &request.logical_block_size},
                                      std::pair{physical_block_size, &request.physical_block_size}}) {
        if (const Field *v = f.get(slot)) {
            const std::string_view key = schema[slot].key;
            auto n = read_integer(*v, dw.key(key), 512, 1 << 20);
            if (!n) return std::move(n).error();
            if ((*n & (*n - 1)) != 0) return invalid(dw.key(key), fmt::format("{} is not a power of two", *n));
            *field = *n;
        }
    }
    auto qos = read_qos(f, dw);
    if (!qos) return std::move(qos).error();
    request.qos = std::move(qos).value();
    return {};
}

// data.addressing_mode (absent, null or "": SAM, as os-brick takes it), applied to every target.
Result<void> read_addressing(const Fields &f, const Where &dw, VolumeRequest &request) {
    const Field *v = f.get(addressing_mode);
    if (v == nullptr) return {};
    const Where where = dw.key("addressing_mode");
    auto name = read_string(*v, where, {.max_bytes = 32, .allow_empty = true});
    if (!name) return std::move(name).error();
    if (name->empty()) return {};
    const auto mode = addressing_mode_from_name(*name);
    if (!mode) {
        return invalid(where, fmt::format("{} is not a SCSI addressing mode; use \"SAM\", \"transparent\", \"SAM2\" or "
                                          "\"SAM3-flat\"", quote_for_message(*name)));
    }
    request.addressing = *mode;
    for (Target &t : request.targets) t.addressing = *mode;
    return {};
}

Result<VolumeRequest> parse_connection_info(const Fields &f) {
    VolumeRequest request;
    const Where root_where{ci, {}};
    if (auto r = check_volume_type(f, root_where); !r) return std::move(r).error();
    const Field *d = f.get(data);
    const Where dw = root_where.key("data");
    if (d == nullptr) return invalid(dw, "is required");
    if (!d->is_object()) return invalid(dw, "must be an object");
    if (auto r = read_targets(f, dw, request); !r) return std::move(r).error();
    if (auto r = read_addressing(f, dw, request); !r) return std::move(r).error();
    auto chap = read_chap(f, dw, auth_method);
    if (!chap) return std::move(chap).error();
    request.chap = std::move(chap).value();
    auto discovery = read_chap(f, dw, discovery_auth_method);
    if (!discovery) return std::move(discovery).error();
    request.discovery_chap = std::move(discovery).value();
    if (auto r = read_identity(f, dw, request); !r) return std::move(r).error();
    if (auto r = read_disk_options(f, root_where, request); !r) return std::move(r).error();
    return request;
}

}  // namespace

Result<VolumeRequest> parse_connection_info(const json::Value &document) {
    Fields f(schema, schema_index);
    f.read(document);
    return parse_connection_info(f);
}

// The call path: no tree; the scratch copy holding the password is wiped when `f` goes.
Result<VolumeRequest> parse_connection_info_text(const char *text) {
    Fields f(schema, schema_index);
    if (auto r = f.parse(text, ci); !r) return std::move(r).error();
    return parse_connection_info(f);
}

}  // namespace ivd::request
