// The one place that writes libvirt XML (through pugixml): network and block <disk> elements and iSCSI secrets.
#pragma once

#include "request/guest_disk.hpp"
#include "request/volume_request.hpp"

#include <optional>
#include <string>

namespace ivd::xml {

struct DiskAuth {
    std::string username;
    std::string secret_usage;  // the libvirt secret's usage name (usage type iscsi)
};

using request::GuestDiskOptions;

// <disk type='network' device='disk'> for QEMU's built-in initiator.
struct NetworkDiskSpec {
    request::Target target;            // the one portal QEMU connects to
    std::string initiator;             // <initiator><iqn name=.../></initiator>; omitted when empty
    std::optional<DiskAuth> auth;      // <auth> inside <source>
    GuestDiskOptions options;
    // What the target libvirt daemon accepts (host_facts' LibvirtXmlFeatures):
    bool auth_in_source = true;        // false (libvirt < 3.9): <auth> is a child of <disk>
    bool emit_initiator = true;        // false (libvirt < 4.7): no <initiator>, whatever `initiator` says
};
std::string network_disk_xml(const NetworkDiskSpec &spec);

// <disk type='block' device='disk'> over a host block device (the multipath path).
struct BlockDiskSpec {
    std::string device_path;           // "/dev/dm-3"
    GuestDiskOptions options;
};
std::string block_disk_xml(const BlockDiskSpec &spec);

// What a version 1 device_info's network disk_xml says about the forms chosen at connect (v2 stores them).
struct NetworkDiskXmlForms {
    std::string initiator;  // "" when the XML had no <initiator>
    bool emit_initiator = false;
    bool auth_in_source = true;
};
NetworkDiskXmlForms read_network_disk_forms(const std::string &disk_xml);

// Where libvirt keeps a secret: persistent (a file under /etc/libvirt/secrets, synced on every define, value set
// and undefine) or ephemeral (libvirtd's memory only: far cheaper, gone when the daemon restarts).
enum class SecretStorage { persistent, ephemeral };

// <secret ephemeral='no|yes' private='yes'><usage type='iscsi'><target>USAGE</target></usage>...</secret>
std::string iscsi_secret_xml(const std::string &usage_name, const std::string &description,
                             SecretStorage storage = SecretStorage::persistent);

}  // namespace ivd::xml
