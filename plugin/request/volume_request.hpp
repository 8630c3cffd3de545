// Value types for everything the host hands to connect/disconnect, parsed and validated; no I/O here.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/secret.hpp"
#include "request/portal.hpp"


#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ivd::request {

// SAM flat-space LUNs: what both libiscsi (QEMU's initiator) and Linux address.
inline constexpr std::int64_t max_lun = 16383;
inline constexpr std::size_t max_targets = 64;

// How a LUN number becomes the LUN the kernel (and libiscsi) addresses: connection_info.data.addressing_mode, as
// Cinder sends it and os-brick's LinuxSCSI.lun_for_addressing reads it. SAM and transparent: the number as it is
// (the default); SAM2: flat-space addressing (LUN + 16384) from LUN 256 on, peripheral below; SAM3-flat: flat
// space for every LUN. The host path scans and matches sysfs (H:C:T:L) with the result.
enum class LunAddressing { sam, transparent, sam2, sam3_flat };
inline constexpr std::int64_t flat_space_lun_offset = 16384;  // address method 01b in the first level
// The largest LUN the kernel may be asked for: a flat-space max_lun.
inline constexpr std::int64_t max_scsi_lun = max_lun + flat_space_lun_offset;

const char *addressing_mode_name(LunAddressing mode);  // "SAM", "transparent", "SAM2", "SAM3-flat"
std::optional<LunAddressing> addressing_mode_from_name(std::string_view name);
std::int64_t scsi_lun(std::int64_t lun, LunAddressing mode);

struct Target {
    Portal portal;
    std::string iqn;
    std::int64_t lun = 0;                            // as the storage names it (target_lun)
    LunAddressing addressing = LunAddressing::sam;   // the volume's addressing_mode
    std::int64_t scsi_lun() const { return request::scsi_lun(lun, addressing); }
    friend bool operator==(const Target &, const Target &) = default;
};

struct ChapCredentials {
    std::string username;
    SecretString password;
};

enum class AccessMode { read_write, read_only };

// libvirt <iotune> limits, keyed by libvirt's element names (which are also nova's qos_specs keys).
using QosLimits = std::vector<std::pair<std::string, std::uint64_t>>;

struct VolumeRequest {
    std::vector<Target> targets;     // one per path, in the order given; lists win over the single keys
    bool targets_from_lists = false;  // false: single target_portal/target_iqn (discovery may add portals)
    std::optional<ChapCredentials> chap;
    std::optional<ChapCredentials> discovery_chap;
    std::string volume_id;  // may be empty
    AccessMode access_mode = AccessMode::read_write;
    bool encrypted = false;
    bool discard = false;
    bool multiattach = false;  // connection_info.multiattach (as Nova reads it) or data.multiattach
    std::int64_t logical_block_size = 0;   // data.logical_block_size; 0: not given
    std::int64_t physical_block_size = 0;  // data.physical_block_size; 0: not given
    QosLimits qos;
    LunAddressing addressing = LunAddressing::sam;  // data.addressing_mode; every target carries it too

    // Identity used to serialise calls for the same volume and to name per-volume objects.
    std::string volume_key() const;
};

struct Connector {
    std::string initiator;  // may be empty
    std::string host;
    std::string ip;
    bool multipath = false;
    bool enforce_multipath = false;  // os-brick's get_connector_properties(enforce_multipath=...), as the host asks
};

enum class DiskBus { scsi, virtio, sata, ide, usb };
const char *bus_name(DiskBus bus);

struct DiskTarget {
    DiskTarget() = default;
    DiskTarget(DiskBus b, std::string d) : bus(b), dev(std::move(d)) {}
    DiskBus bus = DiskBus::scsi;
    std::string dev;  // "sdb"; "" when connect had no guest device (ABI v2)
    std::optional<std::int64_t> unit;        // disk_info.unit: <address type='drive' ... unit=N>
    bool lun = false;                        // disk_info.type "lun": SCSI passthrough (device='lun')
    std::optional<std::int64_t> boot_index;  // disk_info.boot_index: <boot order=N>
};

// {"portal": "host:port", "iqn": ..., "lun": N}: how both paths report a target in device_info and errors;
// `extra_members` reserves room for the caller's own keys.
json::Value target_to_json(const Target &target, std::size_t extra_members = 0);

Result<VolumeRequest> parse_connection_info(const json::Value &document);
Result<Connector> parse_connector(const json::Value &document);
// dev_required false (ABI v2 connect): a document without "dev" yields a DiskTarget with an empty dev.
Result<DiskTarget> parse_disk_info(const json::Value &document, bool dev_required = true);

// The same from the ABI's text, with parse_object's checks and errors first, without building a json::Value
// (what the calls use). text NULL: an error, except disk_info with null_ok (an empty object).
Result<VolumeRequest> parse_connection_info_text(const char *text);
Result<Connector> parse_connector_text(const char *text);
Result<DiskTarget> parse_disk_info_text(const char *text, bool null_ok, bool dev_required = true);

// Removes a secret's bytes from a parsed JSON document before it is freed.
void wipe_secrets_in_connection_info(json::Value &document);

}  // namespace ivd::request
