// The driver module through its C ABI, as a compute host loads it, and the volume both variants of the e2e and
// scale benchmarks attach. Benchmarks only (not tests).
#pragma once

#include "driver_loader.hpp"
#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>

#include <memory>
#include <string>

namespace ivd::bench {

struct Volume {
    int domain = 0;
    std::string dev;
    std::string ci;          // connection_info JSON
    std::string floor_xml;   // the hand-written equivalent
    std::string device_info; // set between plugin connect and disconnect
    std::string disk_xml;
    int tid = 0;
};

// connection_info JSON of LUN `lun` of `iqn` behind `portal`, with the bench's CHAP account when `chap`.
std::string connection_info(const testing::TgtdPortal &portal, const std::string &iqn, int lun,
                            const std::string &volume_id, bool chap);

class Plugin {
public:
    // ephemeral_secrets: the driver's libvirt_ephemeral_secrets (CHAP secrets in libvirtd's memory only).
    // probe_portals: the driver's probe_portals (false: the portal is not logged in to before the disk is made).
    explicit Plugin(bool ephemeral_secrets = false, bool probe_portals = true);
    const vd_driver_table &table() const { return driver_->table(); }
    // Returns device_info.
    std::string connect(const Volume &v) const;
    void disconnect(const Volume &v) const;

private:
    vd_host_table host_{};
    std::unique_ptr<volume_host::DriverInstance> driver_;
    std::string connector_;
};

// Host side of the plugin variant: read disk_xml out of device_info (jsoncpp, as a host would).
std::string disk_xml_of(const std::string &device_info);

// The two variants' attach: "plugin" connects (v keeps device_info and disk_xml), then libvirt attaches its
// disk_xml; "floor" attaches v.floor_xml. The detach undoes it in the opposite order.
void attach_volume(const Plugin &plugin, virDomainPtr dom, Volume &v, bool use_plugin);
void detach_volume(const Plugin &plugin, virDomainPtr dom, const Volume &v, bool use_plugin);

}  // namespace ivd::bench
