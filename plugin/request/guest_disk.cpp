#include "request/guest_disk.hpp"

namespace ivd::request {

GuestDiskOptions guest_disk_options(const VolumeRequest &volume, const DiskTarget &disk, const GuestDiskConfig &config) {
    GuestDiskOptions o;
    o.guest = disk;
    o.serial = volume.volume_id;
    o.read_only = volume.access_mode == AccessMode::read_only;
    o.discard = volume.discard;
    o.cache = config.disk_cache;
    o.io = config.disk_io;
    o.qos = volume.qos;
    o.shareable = volume.multiattach;
    o.logical_block_size = volume.logical_block_size;
    o.physical_block_size = volume.physical_block_size;
    return o;
}

}  // namespace ivd::request
