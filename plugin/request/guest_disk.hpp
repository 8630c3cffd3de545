// What the guest sees of a volume, whichever path serves it: the guest-side fields of the libvirt <disk>.
#pragma once

#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <string>

namespace ivd::request {

// <driver> options, <target>, <iotune>, <serial>, <readonly>.
struct GuestDiskOptions {
    DiskTarget guest;           // <target dev bus>
    std::string serial;         // volume_id; omitted when empty
    bool read_only = false;
    bool discard = false;
    std::string cache = "none";  // "default" omits the attribute
    std::string io = "native";
    QosLimits qos;
    bool shareable = false;                 // <shareable/>: a multiattach volume
    std::int64_t logical_block_size = 0;    // <blockio>; 0: omitted
    std::int64_t physical_block_size = 0;
};

// The one way both paths fill them: from the volume, the guest disk the host chose and the driver's config.
GuestDiskOptions guest_disk_options(const VolumeRequest &volume, const DiskTarget &disk, const GuestDiskConfig &config);

}  // namespace ivd::request
