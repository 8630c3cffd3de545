#include "disk_source.hpp"

#include <fmt/format.h>
#include <pugixml.hpp>

namespace volume_host {

namespace {

std::string default_port(const std::string &protocol) {
    if (protocol == "iscsi") return "3260";
    if (protocol == "nbd") return "10809";
    return "";
}

}  // namespace

DiskSource disk_source_of(const pugi::xml_node &disk) {
    DiskSource s;
    s.type = disk.attribute("type").as_string();
    const pugi::xml_node source = disk.child("source");
    if (s.type == "network") {
        s.protocol = source.attribute("protocol").as_string();
        s.name = source.attribute("name").as_string();
        if (const pugi::xml_node host = source.child("host")) {
            std::string port = host.attribute("port").as_string();
            if (port.empty()) port = default_port(s.protocol);
            s.host = fmt::format("{}:{}", host.attribute("name").as_string(), port);
        }
    } else if (s.type == "block") {
        s.path = source.attribute("dev").as_string();
    } else if (s.type == "file") {
        s.path = source.attribute("file").as_string();
    }
    s.serial = disk.child("serial").text().as_string();
    return s;
}

Outcome<DiskSource> parse_disk_source(const std::string &disk_xml, const char *what) {
    pugi::xml_document doc;
    if (!doc.load_string(disk_xml.c_str())) {
        return ShimError{"input_error", fmt::format("{} disk_xml is not well-formed XML", what), exit_usage};
    }
    DiskSource s = disk_source_of(doc.child("disk"));
    if (s.empty()) {
        return ShimError{"input_error",
                         fmt::format("{} disk_xml names no source (network name or block/file path)", what),
                         exit_usage};
    }
    return s;
}

bool DiskSource::same_storage(const DiskSource &other) const {
    if (type != other.type) return false;
    if (type == "network") return protocol == other.protocol && name == other.name && host == other.host;
    return path == other.path;
}

bool DiskSource::matches_recorded(const DiskSource &recorded) const {
    return same_storage(recorded) && (recorded.serial.empty() || serial == recorded.serial);
}

std::string DiskSource::describe() const {
    std::string out = type == "network" ? fmt::format("network {} {} at {}", protocol, name, host)
                                        : fmt::format("{} {}", type.empty() ? "disk" : type, path);
    if (!serial.empty()) out += fmt::format(" (serial {})", serial);
    return out;
}

}  // namespace volume_host
