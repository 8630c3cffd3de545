#include "request/device_info.hpp"

#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace ivd::request {

namespace {

const Where root{"device_info", {}};

// An optional string member: "" when absent.
Result<std::string> opt_string(const json::Value &doc, std::string_view key, std::size_t max_bytes = 255) {
    const json::Value *v = member(doc, key);
    if (v == nullptr) return std::string();
    return read_string(*v, root.key(key), {.max_bytes = max_bytes, .allow_empty = true});
}

Result<std::optional<bool>> opt_bool(const json::Value &doc, std::string_view key) {
    const json::Value *v = member(doc, key);
    if (v == nullptr) return std::optional<bool>();
    auto b = read_bool(*v, root.key(key));
    if (!b) return std::move(b).error();
    return std::optional<bool>(*b);
}

// {"portal", "iqn", "lun"} as target_to_json writes it.
Result<Target> read_target(const json::Value &v, const Where &where) {
    if (!v.is_object() || !v["portal"].is_string() || !v["iqn"].is_string() || !v["lun"].is_integer()) {
        return invalid(where, "each entry needs portal, iqn and lun");
    }
    Target t;
    auto portal = parse_portal(v["portal"].as_string());
    if (!portal) return invalid(where.key("portal"), portal.error().message);
    t.portal = std::move(portal).value();
    t.iqn = v["iqn"].as_string();
    t.lun = v["lun"].as_int64();
    return t;
}

Result<std::vector<Target>> read_targets(const json::Value &doc, std::string_view key) {
    std::vector<Target> out;
    const json::Value *list = member(doc, key);
    if (list == nullptr) return out;
    const Where where = root.key(key);
    if (!list->is_array()) return invalid(where, "must be an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
        auto t = read_target((*list)[i], where.index(i));
        if (!t) return std::move(t).error();
        out.push_back(std::move(t).value());
    }
    return out;
}

Result<NetworkDevice> parse_network(const json::Value &doc) {
    NetworkDevice n;
    auto usage = opt_string(doc, "secret_usage", 512);
    if (!usage) return std::move(usage).error();
    n.secret_usage = std::move(usage).value();
    auto id = opt_string(doc, "attachment_id", 64);
    if (!id) return std::move(id).error();
    const bool hex = std::all_of(id->begin(), id->end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (!id->empty() && (id->size() != 32 || !hex)) return invalid(root.key("attachment_id"), "must be 32 lowercase hex digits");
    n.attachment_id = std::move(id).value();
    for (auto [key, field] : {std::pair{"secret_uuid", &n.secret_uuid}, std::pair{"auth_username", &n.auth_username},
                              std::pair{"initiator", &n.initiator}, std::pair{"target_iqn", &n.target.iqn},
                              std::pair{"portal_choice_reason", &n.portal_choice_reason}}) {
        auto s = opt_string(doc, key, 1024);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    if (const json::Value *p = member(doc, "portal")) {
        auto s = read_string(*p, root.key("portal"));
        if (!s) return std::move(s).error();
        auto portal = parse_portal(*s);
        if (!portal) return invalid(root.key("portal"), portal.error().message);
        n.target.portal = std::move(portal).value();
    }
    if (const json::Value *l = member(doc, "target_lun")) {
        auto lun = read_integer(*l, root.key("target_lun"), 0, max_lun);
        if (!lun) return std::move(lun).error();
        n.target.lun = *lun;
    }
    auto in_source = opt_bool(doc, "xml_auth_in_source");
    if (!in_source) return std::move(in_source).error();
    n.auth_in_source = *in_source;
    auto emit = opt_bool(doc, "xml_initiator");
    if (!emit) return std::move(emit).error();
    n.emit_initiator = *emit;
    if (const json::Value *c = member(doc, "portal_choice")) n.portal_choice = *c;
    return n;
}

// v3 "addressing_mode": absent in versions 1 and 2, which always scanned the LUN number as it is (SAM).
Result<LunAddressing> read_addressing(const json::Value &doc) {
    const json::Value *v = member(doc, "addressing_mode");
    if (v == nullptr) return LunAddressing::sam;
    auto name = read_string(*v, root.key("addressing_mode"), {.max_bytes = 32});
    if (!name) return std::move(name).error();
    const auto mode = addressing_mode_from_name(*name);
    if (!mode) return invalid(root.key("addressing_mode"), fmt::format("{} is not a SCSI addressing mode", quote_for_message(*name)));
    return *mode;
}

Result<BlockDevice> parse_block(const json::Value &doc) {
    BlockDevice b;
    auto addressing = read_addressing(doc);
    if (!addressing) return std::move(addressing).error();
    b.addressing = *addressing;
    for (auto [key, field] : {std::pair{"path", &b.path}, std::pair{"scsi_wwn", &b.scsi_wwn},
                              std::pair{"multipath_id", &b.multipath_id}, std::pair{"dm", &b.dm},
                              std::pair{"multipath_error", &b.multipath_error}}) {
        auto s = opt_string(doc, key, 4096);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    auto mp = opt_bool(doc, "multipath");
    if (!mp) return std::move(mp).error();
    b.multipath = mp->value_or(!b.multipath_id.empty());
    if (const json::Value *list = member(doc, "paths")) {
        const Where where = root.key("paths");
        if (!list->is_array()) return invalid(where, "must be an array");
        for (std::size_t i = 0; i < list->size(); ++i) {
            const json::Value &p = (*list)[i];
            auto t = read_target(p, where.index(i));
            if (!t) return std::move(t).error();
            t->addressing = b.addressing;
            BlockPath path{std::move(t).value(), p["device"].as_string(), p["state"].as_string(),
                           p["multipath_error"].as_string()};
            if (const json::Value *iface = member(p, "iface")) {
                auto name = read_string(*iface, where.index(i).key("iface"), {.max_bytes = 64});
                if (!name) return std::move(name).error();
                if (!valid_iscsi_iface_name(*name)) {
                    return invalid(where.index(i).key("iface"), fmt::format("{} is not an open-iscsi iface name",
                                                                            quote_for_message(*name)));
                }
                path.iface = std::move(name).value();
            }
            b.paths.push_back(std::move(path));
        }
    }
    if (const json::Value *f = member(doc, "failed_portals")) b.failed_portals = *f;
    if (const json::Value *s = member(doc, "served_by")) b.served_by = *s;
    if (const json::Value *d = member(doc, "discovery")) b.discovery = *d;
    return b;
}

// dev, bus and disk_xml: the guest part, when the document has one.
Result<std::optional<DeviceGuest>> parse_guest(const json::Value &doc) {
    auto xml = opt_string(doc, "disk_xml", 64 * 1024);
    if (!xml) return std::move(xml).error();
    if (member(doc, "dev") == nullptr) {
        if (xml->empty()) return std::optional<DeviceGuest>();
        return std::optional<DeviceGuest>(DeviceGuest{DiskTarget{}, std::move(xml).value()});
    }
    json::Value disk = json::Value::object();
    disk["dev"] = doc["dev"];
    if (const json::Value *bus = member(doc, "bus")) disk["bus"] = *bus;
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

// Where the document goes: a json::Value (to_json) or text (to_json_text). Both are fed by one walk below, so
// the keys and their order cannot drift apart.
class ValueOut {
public:
    explicit ValueOut(json::Value &root) { stack_.push_back(&root); }
    template <class T>
    void add(std::string_view key, T &&value) {
        stack_.back()->add(key, json::Value(std::forward<T>(value)));
    }
    void open_array(std::string_view key, std::size_t reserve) {
        stack_.push_back(&stack_.back()->add(key, json::Value::array(reserve)));
    }
    void open_item(std::size_t members) { stack_.push_back(&stack_.back()->append(json::Value::object(members))); }
    void close() { stack_.pop_back(); }

private:
    std::vector<json::Value *> stack_;
};

class TextOut {
public:
    explicit TextOut(json::TextWriter &w) : w_(w) {}
    void add(std::string_view key, std::string_view v) { w_.key(key), w_.string(v); }
    void add(std::string_view key, const std::string &v) { w_.key(key), w_.string(v); }
    void add(std::string_view key, const char *v) { w_.key(key), w_.string(v); }
    void add(std::string_view key, std::int64_t v) { w_.key(key), w_.integer(v); }
    void add(std::string_view key, bool v) { w_.key(key), w_.boolean(v); }
    void add(std::string_view key, const json::Value &v) { w_.key(key), w_.value(v); }
    void open_array(std::string_view key, std::size_t) {
        w_.key(key);
        w_.start_array();
        arrays_.push_back(true);
    }
    void open_item(std::size_t) {
        w_.start_object();
        arrays_.push_back(false);
    }
    void close() {
        if (arrays_.back()) {
            w_.end_array();
        } else {
            w_.end_object();
        }
        arrays_.pop_back();
    }

private:
    json::TextWriter &w_;
    std::vector<bool> arrays_;
};

template <class Out>
void add_target(Out &out, const Target &t) {
    out.add("portal", t.portal.to_string());
    out.add("iqn", t.iqn);
    out.add("lun", static_cast<std::int64_t>(t.lun));
}

template <class Out>
void write_network(Out &out, const DeviceInfo &info) {
    const NetworkDevice &n = info.network();
    out.add("protocol", "iscsi");
    if (!n.secret_usage.empty()) {
        out.add("secret_uuid", n.secret_uuid);
        out.add("secret_usage", n.secret_usage);
        if (!n.attachment_id.empty()) out.add("attachment_id", n.attachment_id);
        out.add("auth_username", n.auth_username);
    }
    if (info.guest && !info.guest->disk_xml.empty()) out.add("disk_xml", info.guest->disk_xml);
    out.add("portal", n.target.portal.to_string());
    out.add("target_iqn", n.target.iqn);
    out.add("target_lun", static_cast<std::int64_t>(n.target.lun));
    if (!n.initiator.empty()) out.add("initiator", n.initiator);
    if (n.auth_in_source) out.add("xml_auth_in_source", *n.auth_in_source);
    if (n.emit_initiator) out.add("xml_initiator", *n.emit_initiator);
    if (info.guest && !info.guest->disk.dev.empty()) {
        out.add("dev", info.guest->disk.dev);
        out.add("bus", bus_name(info.guest->disk.bus));
    }
}

template <class Out>
void write_block(Out &out, const DeviceInfo &info) {
    const BlockDevice &b = info.block();
    out.add("path", b.path);
    out.add("scsi_wwn", b.scsi_wwn);
    if (!b.multipath_id.empty()) {
        out.add("multipath_id", b.multipath_id);
        out.add("dm", b.dm);
    }
}

template <class Out>
void write_block_tail(Out &out, const DeviceInfo &info) {
    const BlockDevice &b = info.block();
    out.open_array("paths", b.paths.size());
    for (const BlockPath &p : b.paths) {
        out.open_item(7);
        add_target(out, p.target);
        out.add("device", p.device);
        out.add("state", p.state);
        if (!p.multipath_error.empty()) out.add("multipath_error", p.multipath_error);
        if (p.iface != default_iface) out.add("iface", p.iface);
        out.close();
    }
    out.close();
    out.add("failed_portals", b.failed_portals);
    if (!b.served_by.is_null()) out.add("served_by", b.served_by);
    if (!b.discovery.is_null()) out.add("discovery", b.discovery);
    if (!b.multipath_error.empty()) out.add("multipath_error", b.multipath_error);
    out.add("multipath", b.multipath);
    if (b.addressing != LunAddressing::sam) out.add("addressing_mode", addressing_mode_name(b.addressing));
    if (info.guest && !info.guest->disk.dev.empty()) {
        out.add("dev", info.guest->disk.dev);
        out.add("bus", bus_name(info.guest->disk.bus));
    }
    if (info.guest && !info.guest->disk_xml.empty()) out.add("disk_xml", info.guest->disk_xml);
}

// The members of the document, keys in the order version 1 wrote them.
template <class Out>
void write_device_info(Out &out, const DeviceInfo &info) {
    out.add("type", info.is_network() ? "network" : "block");
    out.add("device_info_version", info.version);
    if (info.is_network()) {
        write_network(out, info);
    } else {
        write_block(out, info);
    }
    out.open_array("targets", info.targets.size());
    for (const Target &t : info.targets) {
        out.open_item(3);
        add_target(out, t);
        out.close();
    }
    out.close();
    if (info.is_network()) {
        const NetworkDevice &n = info.network();
        if (!n.portal_choice.is_null()) out.add("portal_choice", n.portal_choice);
        out.add("portal_choice_reason", n.portal_choice_reason);
    } else {
        write_block_tail(out, info);
    }
    for (auto [key, value] : {std::pair{"driver", &info.driver}, std::pair{"attach_path", &info.attach_path},
                              std::pair{"path_reason", &info.path_reason}, std::pair{"volume_id", &info.volume_id}}) {
        if (!value->empty()) out.add(key, *value);
    }
}

}  // namespace

json::Value DeviceInfo::to_json() const {
    json::Value out = json::Value::object(28);
    ValueOut sink(out);
    write_device_info(sink, *this);
    return out;
}

std::string DeviceInfo::to_json_text() const {
    json::TextWriter writer;
    TextOut sink(writer);
    writer.start_object();
    write_device_info(sink, *this);
    writer.end_object();
    return writer.take();
}

Result<DeviceInfo> parse_device_info(const json::Value &doc) {
    DeviceInfo info;
    info.version = 1;
    if (const json::Value *v = member(doc, "device_info_version")) {
        // Later versions only add keys: a newer driver's document still undoes with the keys read here.
        auto n = read_integer(*v, root.key("device_info_version"), 1, 1000);
        if (!n) return std::move(n).error();
        info.version = *n;
    }
    const json::Value *type = member(doc, "type");
    if (type == nullptr) return invalid(root.key("type"), "is required (\"network\" or \"block\")");
    auto t = read_string(*type, root.key("type"), {.max_bytes = 16});
    if (!t) return std::move(t).error();
    if (*t == "network") {
        auto n = parse_network(doc);
        if (!n) return std::move(n).error();
        info.device = std::move(n).value();
    } else if (*t == "block") {
        auto b = parse_block(doc);
        if (!b) return std::move(b).error();
        info.device = std::move(b).value();
    } else {
        return invalid(root.key("type"), fmt::format("{} must be \"network\" or \"block\"", quote_for_message(*t)));
    }
    auto targets = read_targets(doc, "targets");
    if (!targets) return std::move(targets).error();
    info.targets = std::move(targets).value();
    if (!info.is_network()) {
        for (Target &target : info.targets) target.addressing = info.block().addressing;
    }
    auto guest = parse_guest(doc);
    if (!guest) return std::move(guest).error();
    info.guest = std::move(guest).value();
    for (auto [key, field] : {std::pair{"driver", &info.driver}, std::pair{"attach_path", &info.attach_path},
                              std::pair{"path_reason", &info.path_reason}, std::pair{"volume_id", &info.volume_id}}) {
        auto s = opt_string(doc, key, 1024);
        if (!s) return std::move(s).error();
        *field = std::move(s).value();
    }
    return info;
}

}  // namespace ivd::request
