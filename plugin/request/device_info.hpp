// device_info: what connect_volume returns and the host hands back to disconnect, extend and disk_config.
// A stored contract: hosts keep it across driver upgrades, so every key ever written stays readable.
// Version history ("device_info_version"; absent = 1):
//   1  type, the path's keys, the guest part (dev, bus, disk_xml) always present.
//   2  device_info_version; the guest part only when connect had a guest device; network: initiator and the
//      libvirt XML forms chosen (xml_auth_in_source, xml_initiator), so disk_config needs no connect-time facts.
//   3  block: "addressing_mode" when connect's data.addressing_mode was not SAM (absent: SAM, what versions 1 and
//      2 always used), so disconnect matches the kernel's LUNs as connect scanned them.
//   4  network: "addressing_mode" too (absent: SAM): QEMU's libiscsi addresses the LUN as the kernel does, so the
//      disk's LUN and extend's probe follow it.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"
#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ivd::request {

inline constexpr std::int64_t device_info_version = 4;

// The guest-specific part: written when connect was given disk_info.dev (always by version 1).
struct DeviceGuest {
    DiskTarget disk;       // "dev", "bus"
    std::string disk_xml;  // "disk_xml"
};

// QEMU's built-in initiator: the one portal QEMU connects to, and the CHAP secret kept in libvirt.
struct NetworkDevice {
    Target target;                     // "portal", "target_iqn", "target_lun"
    std::string initiator;             // v2 "initiator"; "" in v1 (disk_xml carries it)
    std::optional<bool> auth_in_source;  // v2 "xml_auth_in_source"
    std::optional<bool> emit_initiator;  // v2 "xml_initiator"
    std::string secret_uuid;           // these four only with CHAP
    std::string secret_usage;
    std::string attachment_id;         // "" in device_info of driver versions before attachment ids
    std::string auth_username;
    json::Value portal_choice;         // report: each portal's probe outcome (null when not probed)
    std::string portal_choice_reason;
};

// One host path (an sdX over one session), as "paths" lists them.
struct BlockPath {
    Target target;
    std::string device;           // "/dev/sda"
    std::string state;            // "active", "standby", "not_in_map"
    std::string multipath_error;  // "" unless multipathd refused it
    // "iface": the open-iscsi iface of the path's session, written only when not "default" (absent: "default",
    // all any driver wrote before iscsi_ifaces; no version change: older drivers ignore the key).
    std::string iface{default_iface};
};

// The host's own iSCSI stack: a block device (a multipath map or one path's by-path link).
struct BlockDevice {
    std::string path;          // "path": what libvirt opens
    std::string scsi_wwn;
    std::string multipath_id;  // "" without a map
    std::string dm;
    bool multipath = false;
    std::vector<BlockPath> paths;
    json::Value failed_portals = json::Value::array();  // report, in the order tried
    json::Value served_by;                              // single path: the portal that served (null otherwise)
    json::Value discovery;                              // SendTargets report (null when none ran)
    std::string multipath_error;
    // v3 "addressing_mode" (absent: SAM); parsing sets it on every target of paths and targets too.
    LunAddressing addressing = LunAddressing::sam;
};

struct DeviceInfo {
    std::int64_t version = device_info_version;
    std::variant<NetworkDevice, BlockDevice> device;
    std::vector<Target> targets;        // every target of the volume ("targets")
    std::optional<DeviceGuest> guest;
    // Set by the driver, not by a path.
    std::string driver, attach_path, path_reason, volume_id;

    bool is_network() const { return std::holds_alternative<NetworkDevice>(device); }
    NetworkDevice &network() { return std::get<NetworkDevice>(device); }
    const NetworkDevice &network() const { return std::get<NetworkDevice>(device); }
    BlockDevice &block() { return std::get<BlockDevice>(device); }
    const BlockDevice &block() const { return std::get<BlockDevice>(device); }

    // The document, keys in the order version 1 wrote them, "device_info_version" after "type".
    json::Value to_json() const;
    // The same document as text (json::write(to_json())), written without building it first: connect's result.
    std::string to_json_text() const;
};

// Reads any version's document. Keys needed to undo a connect are checked (type, the secret, the paths);
// report keys are kept as they are; unknown keys are ignored. Errors name the device_info field.
Result<DeviceInfo> parse_device_info(const json::Value &document);
// The same from the ABI's text without building a json::Value, with parse_object's checks and errors first.
// null_ok: NULL, a JSON null and {} give no DeviceInfo (disconnect without device_info).
Result<std::optional<DeviceInfo>> parse_device_info_text(const char *text, bool null_ok);

}  // namespace ivd::request
