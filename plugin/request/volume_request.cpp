#include "request/volume_request.hpp"

#include "request/iscsi_name.hpp"
#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace ivd::request {

const char *addressing_mode_name(LunAddressing mode) {
    switch (mode) {
    case LunAddressing::sam: return "SAM";
    case LunAddressing::transparent: return "transparent";
    case LunAddressing::sam2: return "SAM2";
    case LunAddressing::sam3_flat: return "SAM3-flat";
    }
    return "SAM";
}

std::optional<LunAddressing> addressing_mode_from_name(std::string_view name) {
    // os_brick.constants.SCSI_ADDRESSING_MODES, spelled exactly as Cinder sends them.
    for (const LunAddressing m : {LunAddressing::sam, LunAddressing::transparent, LunAddressing::sam2,
                                  LunAddressing::sam3_flat}) {
        if (name == addressing_mode_name(m)) return m;
    }
    return std::nullopt;
}

std::int64_t scsi_lun(std::int64_t lun, LunAddressing mode) {
    const bool flat = mode == LunAddressing::sam3_flat || (mode == LunAddressing::sam2 && lun >= 256);
    return flat ? lun + flat_space_lun_offset : lun;
}

std::string VolumeRequest::volume_key() const {
    if (!volume_id.empty()) return "volume:" + volume_id;
    const Target &t = targets.front();
    return fmt::format("target:{}/{}/{}", t.portal.to_string(), t.iqn, t.lun);
}

const char *bus_name(DiskBus bus) {
    switch (bus) {
    case DiskBus::scsi: return "scsi";
    case DiskBus::virtio: return "virtio";
    case DiskBus::sata: return "sata";
    case DiskBus::ide: return "ide";
    case DiskBus::usb: return "usb";
    }
    return "scsi";
}

json::Value target_to_json(const Target &target, std::size_t extra_members) {
    json::Value v = json::Value::object(3 + extra_members);
    v.add("portal", target.portal.to_string());
    v.add("iqn", target.iqn);
    v.add("lun", static_cast<std::int64_t>(target.lun));
    return v;
}

void wipe_secrets_in_connection_info(json::Value &document) {
    json::Value *data = document.find("data");
    if (data == nullptr) return;
    for (const char *key : {"auth_password", "discovery_auth_password"}) {
        if (json::Value *v = data->find(key)) v->wipe_strings();
    }
}

}  // namespace ivd::request
