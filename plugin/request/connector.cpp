// The connector (os-brick's connector properties, as the host sends them) and disk_info (the guest device).
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

enum ConnectorSlot : int { c_root, c_initiator, c_host, c_ip, c_enforce_multipath, c_multipath };
constexpr std::array<Slot, 6> connector_schema = {{{-1, ""}, {c_root, "initiator"}, {c_root, "host"}, {c_root, "ip"},
                                                   {c_root, "enforce_multipath"}, {c_root, "multipath"}}};
constexpr SchemaIndex connector_index = make_schema_index(connector_schema);

enum DiskSlot : int { d_root, d_dev, d_bus, d_type, d_unit, d_boot_index };
constexpr std::array<Slot, 6> disk_schema = {{{-1, ""}, {d_root, "dev"}, {d_root, "bus"}, {d_root, "type"},
                                              {d_root, "unit"}, {d_root, "boot_index"}}};
constexpr SchemaIndex disk_index = make_schema_index(disk_schema);

Result<Connector> parse_connector(const Fields &document) {
    Connector connector;
    const Where root{"connector", {}};
    if (const Field *v = document.get(c_initiator)) {
        auto n = read_iscsi_name(*v, root.key("initiator"));
        if (!n) return std::move(n).error();
        connector.initiator = std::move(n).value();
    }
    if (const Field *v = document.get(c_host)) {
        auto h = read_string(*v, root.key("host"), {.max_bytes = 255});
        if (!h) return std::move(h).error();
        connector.host = std::move(h).value();
    }
    if (const Field *v = document.get(c_ip)) {
        auto ip = read_string(*v, root.key("ip"), {.max_bytes = 255});
        if (!ip) return std::move(ip).error();
        connector.ip = std::move(ip).value();
    }
    if (const Field *v = document.get(c_enforce_multipath)) {
        auto b = read_bool(*v, root.key("enforce_multipath"));
        if (!b) return std::move(b).error();
        connector.enforce_multipath = *b;
    }
    if (const Field *v = document.get(c_multipath)) {
        auto b = read_bool(*v, root.key("multipath"));
        if (!b) return std::move(b).error();
        connector.multipath = *b;
    }
    return connector;
}

Result<DiskTarget> parse_disk_info(const Fields &document, bool dev_required) {
    DiskTarget disk;
    const Where root{"disk_info", {}};
    const Field *dev = document.get(d_dev);
    if (dev == nullptr && !dev_required) return disk;
    if (dev == nullptr) return invalid(root.key("dev"), "is required (the guest device name, e.g. \"sdb\")");
    auto name = read_string(*dev, root.key("dev"), {.max_bytes = 16});
    if (!name) return std::move(name).error();
    // sdX, vdX, hdX, xvdX with one to three letters after the prefix, as nova names guest devices.
    const std::string &d = *name;
    std::size_t prefix = 0;
    if (d.rfind("xvd", 0) == 0) {
        prefix = 3;
    } else if (d.rfind("sd", 0) == 0 || d.rfind("vd", 0) == 0 || d.rfind("hd", 0) == 0) {
        prefix = 2;
    }
    const std::string_view letters = std::string_view(d).substr(prefix);
    const bool letters_ok = !letters.empty() && letters.size() <= 3 &&
                            std::all_of(letters.begin(), letters.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (prefix == 0 || !letters_ok) {
        return invalid(root.key("dev"), fmt::format("{} is not a guest disk name like sdb, vdb or hdb", quote_for_message(d)));
    }
    disk.dev = d;
    // Without a bus, the device name says it, as libvirt itself infers.
    disk.bus = d[0] == 'v' ? DiskBus::virtio : d[0] == 'h' ? DiskBus::ide : DiskBus::scsi;
    if (const Field *b = document.get(d_bus)) {
        auto bus = read_string(*b, root.key("bus"), {.max_bytes = 16});
        if (!bus) return std::move(bus).error();
        constexpr std::array<DiskBus, 5> all = {DiskBus::scsi, DiskBus::virtio, DiskBus::sata, DiskBus::ide, DiskBus::usb};
        const auto it = std::find_if(all.begin(), all.end(), [&](DiskBus x) { return *bus == bus_name(x); });
        if (it == all.end()) {
            return invalid(root.key("bus"),
                           fmt::format("{} must be one of scsi, virtio, sata, ide, usb", quote_for_message(*bus)));
        }
        disk.bus = *it;
    }
    if (const Field *t = document.get(d_type)) {
        auto type = read_string(*t, root.key("type"), {.max_bytes = 16});
        if (!type) return std::move(type).error();
        if (*type != "disk" && *type != "lun") {
            return invalid(root.key("type"), fmt::format("{} is not supported; only \"disk\" or \"lun\"", quote_for_message(*type)));
        }
        if (*type == "lun" && disk.bus != DiskBus::scsi) {
            return invalid(root.key("type"), "\"lun\" (SCSI passthrough) needs bus \"scsi\"");
        }
        disk.lun = *type == "lun";
    }
    // Nova sends these as strings or numbers; a drive address unit and a boot order are small.
    if (const Field *u = document.get(d_unit)) {
        auto unit = read_flexible_integer(*u, root.key("unit"), 0, 16383);
        if (!unit) return std::move(unit).error();
        disk.unit = *unit;
    }
    if (const Field *b = document.get(d_boot_index)) {
        auto order = read_flexible_integer(*b, root.key("boot_index"), 1, 65535);
        if (!order) return std::move(order).error();
        disk.boot_index = *order;
    }
    return disk;
}

}  // namespace

Result<Connector> parse_connector(const json::Value &document) {
    Fields f(connector_schema, connector_index);
    f.read(document);
    return parse_connector(f);
}

Result<Connector> parse_connector_text(const char *text) {
    Fields f(connector_schema, connector_index);
    if (auto r = f.parse(text, "connector"); !r) return std::move(r).error();
    return parse_connector(f);
}

Result<DiskTarget> parse_disk_info(const json::Value &document, bool dev_required) {
    Fields f(disk_schema, disk_index);
    f.read(document);
    return parse_disk_info(f, dev_required);
}

Result<DiskTarget> parse_disk_info_text(const char *text, bool null_ok, bool dev_required) {
    Fields f(disk_schema, disk_index);
    if (auto r = f.parse(text, "disk_info", null_ok); !r) return std::move(r).error();
    return parse_disk_info(f, dev_required);
}

}  // namespace ivd::request
