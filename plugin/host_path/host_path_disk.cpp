// The block <disk> for a guest device of a connected volume: pure, from device_info's path.
#include "host_path/host_path.hpp"

#include "request/json_input.hpp"
#include "xml/libvirt_xml.hpp"

namespace ivd::host_path {

Result<std::string> HostPath::disk_config(const request::VolumeRequest &volume, const request::DeviceInfo &device_info,
                                          const request::DiskTarget &disk) {
    const request::BlockDevice &block = device_info.block();
    if (block.path.empty()) return request::invalid(request::Where{"device_info", "path"}, "is required for a block disk");
    xml::BlockDiskSpec spec;
    spec.device_path = block.path;
    spec.options = request::guest_disk_options(volume, disk, config_);
    return xml::block_disk_xml(spec);
}

}  // namespace ivd::host_path
