#include "request/volume_request.hpp"

#include "request/iscsi_name.hpp"
#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace ivd::request {

namespace {

constexpr std::string_view ci = "connection_info";

std::string lowercase(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Result<Portal> read_portal(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 300});
    if (!s) return std::move(s).error();
    auto portal = parse_portal(*s);
    if (!portal) return invalid(where, fmt::format("{} is not a valid portal: {}", quote_for_message(*s), portal.error().message));
    return portal;
}

Result<std::int64_t> read_lun(const json::Value &v, const Where &where) { return read_integer(v, where, 0, max_lun); }

// A list member: present, a non-empty array, not longer than max_targets.
Result<const json::Value *> read_list(const json::Value &data, std::string_view key, const Where &data_where) {
    const json::Value *list = member(data, key);
    if (list == nullptr) return static_cast<const json::Value *>(nullptr);
    const Where where = data_where.key(key);
    if (!list->is_array()) return invalid(where, "must be a list");
    if (list->empty()) return invalid(where, "must not be an empty list");
    if (list->size() > max_targets) {
        return invalid(where, fmt::format("has {} entries; at most {} are supported", list->size(), max_targets));
    }
    return list;
}

// CHAP settings under a prefix: "auth_" or "discovery_auth_".
Result<std::optional<ChapCredentials>> read_chap(const json::Value &data, const Where &data_where,
                                                 std::string_view prefix) {
    const std::string method_key = std::string(prefix).append("method");
    const std::string user_key = std::string(prefix).append("username");
    const std::string password_key = std::string(prefix).append("password");
    bool chap = false;
    if (const json::Value *m = member(data, method_key)) {
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
    const json::Value *user = member(data, user_key);
    const json::Value *password = member(data, password_key);
    if (!chap) {
        if (user != nullptr || password != nullptr) {
            const std::string &given = user != nullptr ? user_key : password_key;
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
    const std::string_view pw = password->as_string();
    if (pw.empty()) return invalid(pw_where, "must not be empty");
    if (pw.size() > 255) return invalid(pw_where, "is longer than 255 bytes");
    if (!is_valid_utf8(pw)) return invalid(pw_where, "is not valid UTF-8");
    if (pw.find('\0') != std::string_view::npos) return invalid(pw_where, "contains a NUL byte");
    return std::optional<ChapCredentials>(ChapCredentials{std::move(username).value(), SecretString(pw)});
}

constexpr std::array<std::string_view, 13> qos_keys = {
    "total_bytes_sec",     "read_bytes_sec",     "write_bytes_sec",     "total_iops_sec",
    "read_iops_sec",       "write_iops_sec",     "total_bytes_sec_max", "read_bytes_sec_max",
    "write_bytes_sec_max", "total_iops_sec_max", "read_iops_sec_max",   "write_iops_sec_max",
    "size_iops_sec"};

Result<QosLimits> read_qos(const json::Value &data, const Where &data_where) {
    QosLimits limits;
    const json::Value *specs = member(data, "qos_specs");
    if (specs == nullptr) return limits;
    const Where where = data_where.key("qos_specs");
    if (!specs->is_object()) return invalid(where, "must be an object");
    for (const std::string_view key : qos_keys) {
        const json::Value *v = member(*specs, key);
        if (v == nullptr) continue;
        // Cinder's qos specs carry numbers as strings; both are taken, and must be whole and non-negative.
        auto n = read_flexible_integer(*v, where.key(key), 0, INT64_MAX);
        if (!n) return std::move(n).error();
        if (*n > 0) limits.emplace_back(std::string(key), static_cast<std::uint64_t>(*n));
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

}  // namespace

const char *addressing_mode_name(LunAddressing mode) {
    switch (mode) {
    case LunAddressing::sam: return "SAM";
    case LunAddressing::transparent: return "transparent";
    case LunAddressing::sam2: return "SAM2";
    case LunAddressing::sam3_flat: return "SAM3-flat";
    }
    return "SAM";
}

std::optional<LunAddressing> addressing_mode_from_name(std::string_view name) {
    // os_brick.constants.SCSI_ADDRESSING_MODES, spelled exactly as Cinder sends them.
    for (const LunAddressing m : {LunAddressing::sam, LunAddressing::transparent, LunAddressing::sam2,
                                  LunAddressing::sam3_flat}) {
        if (name == addressing_mode_name(m)) return m;
    }
    return std::nullopt;
}

std::int64_t scsi_lun(std::int64_t lun, LunAddressing mode) {
    const bool flat = mode == LunAddressing::sam3_flat || (mode == LunAddressing::sam2 && lun >= 256);
    return flat ? lun + flat_space_lun_offset : lun;
}

std::string VolumeRequest::volume_key() const {
    if (!volume_id.empty()) return "volume:" + volume_id;
    const Target &t = targets.front();
    return fmt::format("target:{}/{}/{}", t.portal.to_string(), t.iqn, t.lun);
}

const char *bus_name(DiskBus bus) {
    switch (bus) {
    case DiskBus::scsi: return "scsi";
    case DiskBus::virtio: return "virtio";
    case DiskBus::sata: return "sata";
    case DiskBus::ide: return "ide";
    case DiskBus::usb: return "usb";
    }
    return "scsi";
}

namespace {

Result<void> check_volume_type(const json::Value &document, const Where &root) {
    const json::Value *type = member(document, "driver_volume_type");
    if (type == nullptr) return invalid(root.key("driver_volume_type"), "is required");
    auto type_name = read_string(*type, root.key("driver_volume_type"), {.max_bytes = 64});
    if (!type_name) return std::move(type_name).error();
    if (*type_name != "iscsi") {
        return invalid(root.key("driver_volume_type"),
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

Result<SingleTarget> read_single_target(const json::Value &data, const Where &dw) {
    SingleTarget single;
    if (const json::Value *v = member(data, "target_portal")) {
        auto p = read_portal(*v, dw.key("target_portal"));
        if (!p) return std::move(p).error();
        single.portal = std::move(p).value();
    }
    if (const json::Value *v = member(data, "target_iqn")) {
        auto n = read_iscsi_name(*v, dw.key("target_iqn"));
        if (!n) return std::move(n).error();
        single.iqn = std::move(n).value();
    }
    if (const json::Value *v = member(data, "target_lun")) {
        auto l = read_lun(*v, dw.key("target_lun"));
        if (!l) return std::move(l).error();
        single.lun = *l;
    }
    return single;
}

struct TargetLists {
    const json::Value *portals = nullptr;
    const json::Value *iqns = nullptr;
    const json::Value *luns = nullptr;
};

// Entry i of the lists (target_iqn / target_lun standing in for a missing list, as os-brick does).
Result<Target> list_entry(const TargetLists &lists, const SingleTarget &single, std::size_t i, const Where &dw) {
    Target t;
    auto p = read_portal((*lists.portals)[i], dw.key("target_portals").index(i));
    if (!p) return std::move(p).error();
    t.portal = std::move(p).value();
    if (lists.iqns != nullptr) {
        auto q = read_iscsi_name((*lists.iqns)[i], dw.key("target_iqns").index(i));
        if (!q) return std::move(q).error();
        t.iqn = std::move(q).value();
    } else {
        t.iqn = *single.iqn;
    }
    if (lists.luns != nullptr) {
        auto l = read_lun((*lists.luns)[i], dw.key("target_luns").index(i));
        if (!l) return std::move(l).error();
        t.lun = *l;
    } else {
        t.lun = single.lun;  // one LUN for every portal, as os-brick does
    }
    return t;
}

// target_portals / target_iqns / target_luns: equal lengths (os-brick would silently truncate), no repeats.
Result<std::vector<Target>> read_target_lists(const TargetLists &lists, const SingleTarget &single, const Where &dw) {
    const std::size_t n = lists.portals->size();
    if (lists.iqns == nullptr && !single.iqn) {
        return invalid(dw.key("target_iqns"), "is required with target_portals (or give target_iqn for all)");
    }
    if (lists.iqns != nullptr && lists.iqns->size() != n) {
        return invalid(dw.key("target_iqns"), fmt::format("has {} entries but target_portals has {}", lists.iqns->size(), n));
    }
    if (lists.luns != nullptr && lists.luns->size() != n) {
        return invalid(dw.key("target_luns"), fmt::format("has {} entries but target_portals has {}", lists.luns->size(), n));
    }
    std::vector<Target> targets;
    for (std::size_t i = 0; i < n; ++i) {
        auto t = list_entry(lists, single, i, dw);
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

Result<void> read_targets(const json::Value &data, const Where &dw, VolumeRequest &request) {
    auto single = read_single_target(data, dw);
    if (!single) return std::move(single).error();
    TargetLists lists;
    for (const auto &[key, slot] : {std::pair{"target_portals", &lists.portals}, std::pair{"target_iqns", &lists.iqns},
                                    std::pair{"target_luns", &lists.luns}}) {
        auto list = read_list(data, key, dw);
        if (!list) return std::move(list).error();
        *slot = *list;
    }
    if (lists.portals != nullptr) {
        auto targets = read_target_lists(lists, *single, dw);
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

Result<void> read_identity(const json::Value &data, const Where &dw, VolumeRequest &request) {
    if (const json::Value *v = member(data, "volume_id")) {
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
    if (const json::Value *v = member(data, "access_mode")) {
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
Result<void> read_disk_options(const json::Value &document, const json::Value &data, const Where &root,
                               VolumeRequest &request) {
    const Where dw = root.key("data");
    for (const auto &[key, field] : {std::pair{"encrypted", &request.encrypted}, std::pair{"discard", &request.discard}}) {
        if (const json::Value *v = member(data, key)) {
            auto b = read_bool(*v, dw.key(key));
            if (!b) return std::move(b).error();
            *field = *b;
        }
    }
    for (const auto &[where, object] : {std::pair{root.key("multiattach"), &document}, std::pair{dw.key("multiattach"), &data}}) {
        if (const json::Value *v = member(*object, "multiattach")) {
            auto b = read_bool(*v, where);
            if (!b) return std::move(b).error();
            request.multiattach = request.multiattach || *b;
        }
    }
    for (const auto &[key, field] : {std::pair{"logical_block_size", &request.logical_block_size},
                                     std::pair{"physical_block_size", &request.physical_block_size}}) {
        if (const json::Value *v = member(data, key)) {
            auto n = read_integer(*v, dw.key(key), 512, 1 << 20);
            if (!n) return std::move(n).error();
            if ((*n & (*n - 1)) != 0) return invalid(dw.key(key), fmt::format("{} is not a power of two", *n));
            *field = *n;
        }
    }
    auto qos = read_qos(data, dw);
    if (!qos) return std::move(qos).error();
    request.qos = std::move(qos).value();
    return {};
}

// data.addressing_mode (absent, null or "": SAM, as os-brick takes it), applied to every target.
Result<void> read_addressing(const json::Value &data, const Where &dw, VolumeRequest &request) {
    const json::Value *v = member(data, "addressing_mode");
    if (v == nullptr || v->is_null()) return {};
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

}  // namespace

// driver_volume_type -> data -> targets -> CHAP -> identity -> the disk's options.
Result<VolumeRequest> parse_connection_info(const json::Value &document) {
    VolumeRequest request;
    const Where root{ci, {}};
    if (auto r = check_volume_type(document, root); !r) return std::move(r).error();
    const json::Value *data = member(document, "data");
    const Where dw = root.key("data");
    if (data == nullptr) return invalid(dw, "is required");
    if (!data->is_object()) return invalid(dw, "must be an object");
    if (auto r = read_targets(*data, dw, request); !r) return std::move(r).error();
    if (auto r = read_addressing(*data, dw, request); !r) return std::move(r).error();
    auto chap = read_chap(*data, dw, "auth_");
    if (!chap) return std::move(chap).error();
    request.chap = std::move(chap).value();
    auto discovery = read_chap(*data, dw, "discovery_auth_");
    if (!discovery) return std::move(discovery).error();
    request.discovery_chap = std::move(discovery).value();
    if (auto r = read_identity(*data, dw, request); !r) return std::move(r).error();
    if (auto r = read_disk_options(document, *data, root, request); !r) return std::move(r).error();
    return request;
}

json::Value target_to_json(const Target &target, std::size_t extra_members) {
    json::Value v = json::Value::object(3 + extra_members);
    v.add("portal", target.portal.to_string());
    v.add("iqn", target.iqn);
    v.add("lun", static_cast<std::int64_t>(target.lun));
    return v;
}

void wipe_secrets_in_connection_info(json::Value &document) {
    json::Value *data = document.find("data");
    if (data == nullptr) return;
    for (const char *key : {"auth_password", "discovery_auth_password"}) {
        if (json::Value *v = data->find(key)) v->wipe_strings();
    }
}

}  // namespace ivd::request
