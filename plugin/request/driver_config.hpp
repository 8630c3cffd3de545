// The driver's own configuration: the JSON object given to create(), usually an INI section of strings.
#pragma once

#include "core/error.hpp"

#include "core/json.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ivd::request {

enum class PathChoice { automatic, network, host };
enum class Tristate { automatic, yes, no };

struct DriverConfig {
    PathChoice path = PathChoice::automatic;
    bool enforce_multipath = false;
    std::string libvirt_uri = "qemu:///system";
    // Bounds of the driver's libvirt calls (see README "Deadlines").
    std::chrono::milliseconds libvirt_open_timeout{10000};  // virConnectOpen, any transport
    int libvirt_keepalive_interval_s = 5;                   // 0: no keepalive
    int libvirt_keepalive_count = 3;                        // unanswered keepalives before the link is dropped

    // Net-disk path.
    bool probe_portals = true;
    std::chrono::milliseconds probe_timeout{3000};
    std::string disk_cache = "none";
    std::string disk_io = "native";
    // cleanup considers only secrets whose usage continues with this after "iscsi-volume-driver:" (a volume id
    // prefix); empty: every secret of this driver. For hosts (and test suites) that share one libvirtd.
    std::string cleanup_volume_prefix;
    // Root-only directory (ivd::PrivateDir) of the records of which connects still need a volume's CHAP secret,
    // and the flock files that serialise one volume's secret steps across processes. Persistent, as libvirt's
    // secrets are.
    std::string state_dir = "/var/lib/iscsi-volume-driver";
    std::chrono::milliseconds state_lock_timeout{30000};  // bounded wait for another process's secret steps

    // Host facts; "automatic" means detect.
    std::string connector_ip;    // connector "ip"; "" = this host's detected address
    std::string connector_host;  // connector "host"; "" = gethostname()
    std::string initiator_name;  // overrides the file below
    std::string initiator_name_file = "/etc/iscsi/initiatorname.iscsi";
    Tristate host_multipath = Tristate::automatic;  // can this host multipath (multipathd)?
    Tristate qemu_iscsi = Tristate::automatic;      // does QEMU have its iSCSI block driver?

    // Host path (iscsiadm, multipath-tools, sysfs). Tools are run by these absolute paths, never through a shell.
    std::string iscsiadm_path = "/usr/sbin/iscsiadm";
    std::string multipath_path = "/usr/sbin/multipath";
    std::string multipathd_path = "/usr/sbin/multipathd";
    std::string sysfs_root = "/sys";
    std::string dev_root = "/dev";
    std::string iscsi_node_dir = "/etc/iscsi/nodes";        // open-iscsi's node records (CHAP goes in here)
    // flock files per (portal, IQN). Root's alone (0700, checked: see core/private_dir.hpp), never /run/lock,
    // where any user can create the directory first, plant symlinks or hold the locks.
    std::string lock_dir = "/run/iscsi-volume-driver/locks";
    std::chrono::milliseconds device_wait_timeout{20000};    // LUN block device after the scan
    std::chrono::milliseconds login_timeout{30000};          // one iscsiadm login
    std::chrono::milliseconds multipath_wait_timeout{10000}; // dm map after multipathd took the paths
    std::chrono::milliseconds command_timeout{15000};        // any other tool call
    // false (default): the CHAP password is removed from the node record right after login (the session keeps
    // it); true: left there (0600) as os-brick does, so iscsid can log in again after its own restart.
    bool keep_chap_in_node_record = false;
    Tristate host_iscsi = Tristate::automatic;  // can this host log in itself (iscsiadm + iscsid)?

    // Host capability detection (host_facts/). Every file or socket the detector looks at is configurable, so
    // tests can hide QEMU's iSCSI module or the host tools without touching the system.
    std::string qemu_emulator;    // empty: the emulator libvirt's domain capabilities name
    std::string qemu_module_dir;  // empty: the module directory compiled into that emulator
    std::string iscsid_socket = "@ISCSIADM_ABSTRACT_NAMESPACE";              // '@': abstract unix socket
    std::string multipathd_socket = "@/org/kernel/linux/storage/multipathd";
    std::chrono::seconds host_facts_ttl{300};  // re-detect after this long; 0: only when a decision fails

    std::vector<std::string> unknown_keys;  // reported in the log, not an error
};

Result<DriverConfig> parse_driver_config(const json::Value &document);

}  // namespace ivd::request
