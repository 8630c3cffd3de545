#include "request/device_info.hpp"

#include "request/json_fields.hpp"
#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace ivd::request {

namespace {

const Where root{"device_info", {}};

// The slots of device_info (every version's keys; unknown keys are ignored).
enum S : int {
    s_root, version, type, secret_usage, attachment_id, secret_uuid, auth_username, initiator, target_iqn,
    portal_choice_reason, portal, target_lun, xml_auth_in_source, xml_initiator, addressing_mode, path, scsi_wwn,
    multipath_id, dm, multipath_error, multipath, disk_xml, dev, bus, driver, attach_path, path_reason, volume_id,
    portal_choice, failed_portals, served_by, discovery,
    targets, t_portal, t_iqn, t_lun,
    paths, p_portal, p_iqn, p_lun, p_device, p_state, p_multipath_error, p_iface, slot_count
};

constexpr auto schema = [] {
    std::array<Slot, slot_count> s{};
    s[s_root] = {-1, ""};
    const std::pair<S, std::string_view> scalars[] = {
        {version, "device_info_version"}, {type, "type"}, {secret_usage, "secret_usage"},
        {attachment_id, "attachment_id"}, {secret_uuid, "secret_uuid"}, {auth_username, "auth_username"},
        {initiator, "initiator"}, {target_iqn, "target_iqn"}, {portal_choice_reason, "portal_choice_reason"},
        {portal, "portal"}, {target_lun, "target_lun"}, {xml_auth_in_source, "xml_auth_in_source"},
        {xml_initiator, "xml_initiator"}, {addressing_mode, "addressing_mode"}, {path, "path"},
        {scsi_wwn, "scsi_wwn"}, {multipath_id, "multipath_id"}, {dm, "dm"}, {multipath_error, "multipath_error"},
        {multipath, "multipath"}, {disk_xml, "disk_xml"}, {dev, "dev"}, {bus, "bus"}, {driver, "driver"},
        {attach_path, "attach_path"}, {path_reason, "path_reason"}, {volume_id, "volume_id"}};
    for (const auto &[slot, key] : scalars) s[slot] = {s_root, key};
    s[portal_choice] = {s_root, "portal_choice", SlotKind::value, 0};
    s[failed_portals] = {s_root, "failed_portals", SlotKind::value, 1};
    s[served_by] = {s_root, "served_by", SlotKind::value, 2};
    s[discovery] = {s_root, "discovery", SlotKind::value, 3};
    s[targets] = {s_root, "targets", SlotKind::rows, 0};
    s[t_portal] = {targets, "portal", SlotKind::scalar, 1};
    s[t_iqn] = {targets, "iqn", SlotKind::scalar, 2};
    s[t_lun] = {targets, "lun", SlotKind::scalar, 3};
    s[paths] = {s_root, "paths", SlotKind::rows, 1};
    const std::pair<S, std::string_view> path_keys[] = {{p_portal, "portal"}, {p_iqn, "iqn"}, {p_lun, "lun"},
                                                       {p_device, "device"}, {p_state, "state"},
                                                       {p_multipath_error, "multipath_error"}, {p_iface, "iface"}};
    int column = 1;
    for (const auto &[slot, key] : path_keys) s[slot] = {paths, key, SlotKind::scalar, column++};
    return s;
}();
static_assert(schema.size() <= max_slots);
constexpr SchemaIndex schema_index = make_schema_index(schema);

// An optional string member: "" when absent.
Result<std::string> opt_string(const Fields &f, S slot, std::size_t max_bytes = 255) {
    const Field *v = f.get(slot);
    if (v == nullptr) return std::string();
    return read_string(*v, root.key(schema[slot].key), {.max_bytes = max_bytes, .allow_empty = true});
}

Result<std::optional<bool>> opt_bool(const Fields &f, S slot) {
    const Field *v = f.get(slot);
    if (v == nullptr) return std::optional<bool>();
    auto b = read_bool(*v, root.key(schema[slot].key));
    if (!b) return std::move(b).error();
    return std::optional<bool>(*b);
}

// Row i of targets or paths: {"portal", "iqn", "lun"} as target_to_json writes it. The columns of the two lists
// follow their own slot in the same order.
Result<Target> read_target(const Fields &f, S list, std::size_t i, const Where &where) {
    const Field &item = f.row(list, i, list);
    const Field &p = f.row(list, i, list + 1);
    const Field &q = f.row(list, i, list + 2);
    const Field &l = f.row(list, i, list + 3);
    if (!item.is_object() || !p.is_string() || !q.is_string() || l.type != json::Type::integer) {
        return invalid(where, "each entry needs portal, iqn and lun");
    }
    Target t;
    auto parsed = parse_portal(p.text());
    if (!parsed) return invalid(where.key("portal"), parsed.error().message);
    t.portal = std::move(parsed).value();
    t.iqn = std::string(q.text());
    t.lun = l.i;
    return t;
}

Result<std::vector<Target>> read_targets(const Fields &f) {
    std::vector<Target> out;
    const Field *list = f.get(targets);
    if (list == nullptr) return out;
    const Where where = root.key("targets");
    if (!list->is_array()) return invalid(where, "must be an array");
    out.reserve(list->size);
    for (std::size_t i = 0; i < list->size; ++i) {
        auto t = read_target(f, targets, i, where.index(i));
        if (!t) return std::move(t).error();
        out.push_back(std::move(t).value());
    }
    return out;
}

// "addressing_mode" (block since v3, network since v4): absent before, where the LUN number was used as it is (SAM).
Result<LunAddressing> read_addressing(const Fields &f) {
    const Field *v = f.get(addressing_mode);
    if (v == nullptr) return LunAddressing::sam;
    auto name = read_string(*v, root.key("addressing_mode"), {.max_bytes = 32});
    if (!name) return std::move(name).error();
    const auto mode = addressing_mode_from_name(*name);
    if (!mode) return invalid(root.key("addressing_mode"), fmt::format("{} is not a SCSI addressing mode", quote_for_message(*name)));
    return *mode;
}

Result<NetworkDevice> parse_network(const Fields &f) {
    NetworkDevice n;
    auto usage = opt_string(f, secret_usage, 512);
    if (!usage) return std::move(usage).error();
    n.secret_usage = std::move(usage).value();
    auto id = opt_string(f, attachment_id, 64);
    if (!id) return std::move(id).error();
    const bool hex = std::all_of(id->begin(), id->end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (!id->empty() && (id->size() != 32 || !hex)) return invalid(root.key("attachment_id"), "must be 32 lowercase hex digits");
    n.attachment_id = std::move(id).value();
    for (auto [slot, field] : {std::pair{secret_uuid, &n.secret_uuid}, std::pair{auth_username, &n.auth_username},
                               std::pair{initiator, &n.initiator}, std::pair{target_iqn, &n.target.iqn},
                               std::pair{portal_choice_reason, &n.portal_choice_reason}}) {
        auto s = opt_string(f, slot, 1024);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    if (const Field *p = f.get(portal)) {
        auto s = read_string(*p, root.key("portal"));
        if (!s) return std::move(s).error();
        auto parsed = parse_portal(*s);
        if (!parsed) return invalid(root.key("portal"), parsed.error().message);
        n.target.portal = std::move(parsed).value();
    }
    if (const Field *l = f.get(target_lun)) {
        auto lun = read_integer(*l, root.key("target_lun"), 0, max_lun);
        if (!lun) return std::move(lun).error();
        n.target.lun = *lun;
    }
    auto addressing = read_addressing(f);
    if (!addressing) return std::move(addressing).error();
    n.target.addressing = *addressing;
    auto in_source = opt_bool(f, xml_auth_in_source);
    if (!in_source) return std::move(in_source).error();
    n.auth_in_source = *in_source;
    auto emit = opt_bool(f, xml_initiator);
    if (!emit) return std::move(emit).error();
    n.emit_initiator = *emit;
    if (f.get(portal_choice) != nullptr) n.portal_choice = f.kept(portal_choice);
    return n;
}


Result<BlockPath> read_path(const Fields &f, std::size_t i, const Where &where, LunAddressing addressing) {
    auto t = read_target(f, paths, i, where);
    if (!t) return std::move(t).error();
    t->addressing = addressing;
    // Like the tree's as_string(): "" for a missing or non-string member.
    const auto text = [&](S column) { const Field &c = f.row(paths, i, column); return std::string(c.is_string() ? c.text() : ""); };
    BlockPath path{std::move(t).value(), text(p_device), text(p_state), text(p_multipath_error)};
    const Field &iface = f.row(paths, i, p_iface);
    if (iface.present && iface.type != json::Type::null) {
        auto name = read_string(iface, where.key("iface"), {.max_bytes = 64});
        if (!name) return std::move(name).error();
        if (!valid_iscsi_iface_name(*name)) {
            return invalid(where.key("iface"), fmt::format("{} is not an open-iscsi iface name", quote_for_message(*name)));
        }
        path.iface = std::move(name).value();
    }
    return path;
}

Result<BlockDevice> parse_block(const Fields &f) {
    BlockDevice b;
    auto addressing = read_addressing(f);
    if (!addressing) return std::move(addressing).error();
    b.addressing = *addressing;
    for (auto [slot, field] : {std::pair{path, &b.path}, std::pair{scsi_wwn, &b.scsi_wwn},
                               std::pair{multipath_id, &b.multipath_id}, std::pair{dm, &b.dm},
                               std::pair{multipath_error, &b.multipath_error}}) {
        auto s = opt_string(f, slot, 4096);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    auto mp = opt_bool(f, multipath);
    if (!mp) return std::move(mp).error();
    b.multipath = mp->value_or(!b.multipath_id.empty());
    if (const Field *list = f.get(paths)) {
        const Where where = root.key("paths");
        if (!list->is_array()) return invalid(where, "must be an array");
        for (std::size_t i = 0; i < list->size; ++i) {
            auto p = read_path(f, i, where.index(i), b.addressing);
            if (!p) return std::move(p).error();
            b.paths.push_back(std::move(p).value());
        }
    }
    if (f.get(failed_portals) != nullptr) b.failed_portals = f.kept(failed_portals);
    if (f.get(served_by) != nullptr) b.served_by = f.kept(served_by);
    if (f.get(discovery) != nullptr) b.discovery = f.kept(discovery);
    return b;
}

// A scalar's json::Value (a container's: empty, of its type: the disk_info checks read only their type).
json::Value value_of(const Field &f) {
    switch (f.type) {
    case json::Type::boolean: return json::Value(f.b);
    case json::Type::integer: return f.is_unsigned ? json::Value(f.u) : json::Value(f.i);
    case json::Type::real: {
        json::ValueBuilder b;
        b.real(f.d, f.oversized_integer);
        return b.take();
    }
    case json::Type::string: return json::Value(f.text());
    case json::Type::array: return json::Value::array();
    case json::Type::object: return json::Value::object();
    case json::Type::null: break;
    }
    return json::Value();
}

// dev, bus and disk_xml: the guest part, when the document has one.
Result<std::optional<DeviceGuest>> parse_guest(const Fields &f) {
    auto xml = opt_string(f, disk_xml, 64 * 1024);
    if (!xml) return std::move(xml).error();
    if (f.get(dev) == nullptr) {
        if (xml->empty()) return std::optional<DeviceGuest>();
        return std::optional<DeviceGuest>(DeviceGuest{DiskTarget{}, std::move(xml).value()});
    }
    json::Value disk = json::Value::object();
    disk["dev"] = value_of(*f.get(dev));
    if (const Field *b = f.get(bus)) disk["bus"] = value_of(*b);
    auto target = parse_disk_info(disk);
    if (!target) {
        Error e = std::move(target).error();
        e.argument = "device_info";
        return e;
    }
    return std::optional<DeviceGuest>(DeviceGuest{std::move(target).value(), std::move(xml).value()});
}

}  // namespace

namespace {

Result<DeviceInfo> parse_device_info(const Fields &f) {
    DeviceInfo info;
    info.version = 1;
    if (const Field *v = f.get(version)) {
        // Later versions only add keys: a newer driver's document still undoes with the keys read here.
        auto n = read_integer(*v, root.key("device_info_version"), 1, 1000);
        if (!n) return std::move(n).error();
        info.version = *n;
    }
    const Field *t = f.get(type);
    if (t == nullptr) return invalid(root.key("type"), "is required (\"network\" or \"block\")");
    auto name = read_string(*t, root.key("type"), {.max_bytes = 16});
    if (!name) return std::move(name).error();
    if (*name == "network") {
        auto n = parse_network(f);
        if (!n) return std::move(n).error();
        info.device = std::move(n).value();
    } else if (*name == "block") {
        auto b = parse_block(f);
        if (!b) return std::move(b).error();
        info.device = std::move(b).value();
    } else {
        return invalid(root.key("type"), fmt::format("{} must be \"network\" or \"block\"", quote_for_message(*name)));
    }
    auto list = read_targets(f);
    if (!list) return std::move(list).error();
    info.targets = std::move(list).value();
    const LunAddressing addressing = info.is_network() ? info.network().target.addressing : info.block().addressing;
    for (Target &target : info.targets) target.addressing = addressing;
    auto guest = parse_guest(f);
    if (!guest) return std::move(guest).error();
    info.guest = std::move(guest).value();
    for (auto [slot, field] : {std::pair{driver, &info.driver}, std::pair{attach_path, &info.attach_path},
                               std::pair{path_reason, &info.path_reason}, std::pair{volume_id, &info.volume_id}}) {
        auto s = opt_string(f, slot, 1024);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    return info;
}

}  // namespace

Result<DeviceInfo> parse_device_info(const json::Value &document) {
    Fields f(schema, schema_index);
    f.read(document);
    return parse_device_info(f);
}

Result<std::optional<DeviceInfo>> parse_device_info_text(const char *text, bool null_ok) {
    Fields f(schema, schema_index);
    if (auto r = f.parse(text, "device_info", null_ok); !r) return std::move(r).error();
    if (null_ok && f.raw(s_root).size == 0) return std::optional<DeviceInfo>();  // NULL, null or {}
    auto info = parse_device_info(f);
    if (!info) return std::move(info).error();
    return std::optional<DeviceInfo>(std::move(info).value());
}

}  // namespace ivd::request
