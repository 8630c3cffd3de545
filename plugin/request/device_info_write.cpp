// device_info written: as a json::Value (to_json) or straight as text (to_json_text, connect's result).
#include "request/device_info.hpp"

#include <string_view>
#include <utility>
#include <vector>

namespace ivd::request {

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
    void add(std::string_view key, std::string_view v) { w_.plain_key(key), w_.string(v); }
    void add(std::string_view key, const std::string &v) { w_.plain_key(key), w_.string(v); }
    void add(std::string_view key, const char *v) { w_.plain_key(key), w_.string(v); }
    void add(std::string_view key, std::int64_t v) { w_.plain_key(key), w_.integer(v); }
    void add(std::string_view key, bool v) { w_.plain_key(key), w_.boolean(v); }
    void add(std::string_view key, const json::Value &v) { w_.plain_key(key), w_.value(v); }
    void open_array(std::string_view key, std::size_t) {
        w_.plain_key(key);
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
    if (n.target.addressing != LunAddressing::sam) out.add("addressing_mode", addressing_mode_name(n.target.addressing));
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

}  // namespace ivd::request
