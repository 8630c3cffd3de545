// What identifies the volume behind a libvirt <disk> element, read with pugixml: for a network disk the
// protocol, source name (IQN/LUN) and first host; for a block or file disk the source path; plus the serial.
// volume-host compares these to tell "our volume's disk" from another disk that took the same target dev.
#pragma once

#include "shim_error.hpp"

#include <string>

namespace pugi {
class xml_node;
}

namespace volume_host {

struct DiskSource {
    std::string type;      // <disk type>: "network", "block", "file"
    std::string protocol;  // network: "iscsi"
    std::string name;      // network: "iqn.../1"
    std::string host;      // network: "name:port" of the first <host> (port defaults per protocol)
    std::string path;      // block: source dev; file: source file
    std::string serial;    // <serial>, may be empty

    // Same storage behind both disks (serial not compared).
    bool same_storage(const DiskSource &other) const;
    // same_storage, and the serial too when this one records a serial.
    bool matches_recorded(const DiskSource &recorded) const;
    bool empty() const { return name.empty() && path.empty(); }
    // "network iscsi iqn.../1 at 127.0.0.1:3260" or "block /dev/dm-0"; for error messages.
    std::string describe() const;
};

DiskSource disk_source_of(const pugi::xml_node &disk);
// From a <disk> element's text (device_info's disk_xml); input_error when it is not well-formed or names no
// source.
Outcome<DiskSource> parse_disk_source(const std::string &disk_xml, const char *what);

}  // namespace volume_host
