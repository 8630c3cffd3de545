// The driver's own configuration: the JSON object given to create(), usually an INI section of strings.
// DriverConfig is the aggregate of disjoint parts (each key has exactly one home, set by one row of the parse
// table in driver_config.cpp); each room receives only the part it reads (decide: DecideConfig, host facts:
// host_facts(), the network path: net_disk(), the host path: host_path(), the guest disk: GuestDiskConfig).
#pragma once

#include "core/error.hpp"

#include "core/json.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::request {

enum class PathChoice { automatic, network, host };
enum class Tristate { automatic, yes, no };

inline constexpr std::string_view default_initiator_name_file = "/etc/iscsi/initiatorname.iscsi";

// --- Parts: disjoint groups of keys, each the input of one room or shared by two. ---

// The path decision (decide/).
struct DecideConfig {
    PathChoice path = PathChoice::automatic;
    bool enforce_multipath = false;
};

// The guest side of the emitted <disk> (request/guest_disk), whichever path serves it.
struct GuestDiskConfig {
    std::string disk_cache = "none";
    std::string disk_io = "native";
};

// Portal probing with libiscsi.
struct ProbeConfig {
    bool probe_portals = true;
    std::chrono::milliseconds probe_timeout{3000};
};

// The driver's libvirt connection (see README "Deadlines"): host facts and the network path open one.
struct LibvirtConfig {
    std::string libvirt_uri = "qemu:///system";
    std::chrono::milliseconds libvirt_open_timeout{10000};  // virConnectOpen, any transport
    int libvirt_keepalive_interval_s = 5;                   // 0: no keepalive
    int libvirt_keepalive_count = 3;                        // unanswered keepalives before the link is dropped
};

// Host path tools, run by these absolute paths, never through a shell; host facts check they exist.
struct HostToolsConfig {
    std::string iscsiadm_path = "/usr/sbin/iscsiadm";
    std::string multipath_path = "/usr/sbin/multipath";
    std::string multipathd_path = "/usr/sbin/multipathd";
    // A forced disconnect's map that stays open: removal deferred to its last close (`dmsetup remove --deferred`),
    // then its table replaced with an error target (`dmsetup wipe_table`). Not a capability: only that step needs it.
    std::string dmsetup_path = "/usr/sbin/dmsetup";
};

// Host capability detection (host_facts/); "automatic" means detect. Every file or socket the detector looks
// at is configurable, so tests can hide QEMU's iSCSI module or the host tools without touching the system.
struct HostFactsOptions {
    std::string initiator_name;  // overrides the file below
    std::string initiator_name_file{default_initiator_name_file};
    Tristate host_multipath = Tristate::automatic;  // can this host multipath (multipathd)?
    Tristate qemu_iscsi = Tristate::automatic;      // does QEMU have its iSCSI block driver?
    Tristate host_iscsi = Tristate::automatic;      // can this host log in itself (iscsiadm + iscsid)?
    std::string qemu_emulator;    // empty: the emulator libvirt's domain capabilities name
    std::string qemu_module_dir;  // empty: the module directory compiled into that emulator
    std::string iscsid_socket = "@ISCSIADM_ABSTRACT_NAMESPACE";              // '@': abstract unix socket
    std::string multipathd_socket = "@/org/kernel/linux/storage/multipathd";
};

// One open-iscsi iface the host path logs in through (iscsi_ifaces): an existing one (`default`, an offload iface
// such as `bnx2i.00:11:22:33:44:55`), or, with `netdev`, one bound to that NIC (iface.net_ifacename), created
// when missing.
inline constexpr std::string_view default_iface = "default";
struct IscsiIface {
    std::string name;
    std::string netdev;  // "": the iface must exist already
    friend bool operator==(const IscsiIface &, const IscsiIface &) = default;
};

// Whether iscsi_ifaces would accept `name` as an iface name (so it can go into iscsiadm's argv and file names).
bool valid_iscsi_iface_name(std::string_view name);

// The host path's own keys (iscsiadm, multipath-tools, sysfs).
struct HostPathOptions {
    std::string sysfs_root = "/sys";
    std::string dev_root = "/dev";
    // udev's database: a block device's entry "bMAJOR:MINOR" is there
    // once udev has processed its add event and gone once it has processed its remove; multipathd hears of a
    // device only after that. No such directory (no udev): nothing is waited for.
    std::string udev_data_dir = "/run/udev/data";
    std::string iscsi_node_dir = "/etc/iscsi/nodes";  // open-iscsi's node records (CHAP goes in here)
    // multipath-tools' wwids file, read only: a WWID it lists already needs no `multipath -a` on connect.
    std::string multipath_wwids_file = "/etc/multipath/wwids";
    // flock files per (portal, IQN). Root's alone (0700, checked: see core/private_dir.hpp), never /run/lock,
    // where any user can create the directory first, plant symlinks or hold the locks.
    std::string lock_dir = "/run/iscsi-volume-driver/locks";
    std::chrono::milliseconds device_wait_timeout{20000};     // LUN block device after the scan
    std::chrono::milliseconds login_timeout{30000};           // one iscsiadm login
    std::chrono::milliseconds multipath_wait_timeout{10000};  // dm map after multipathd took the paths
    std::chrono::milliseconds command_timeout{15000};         // any other tool call
    std::chrono::milliseconds map_ready_timeout{10000};       // connect: the map reads a block (ready for I/O)
    std::chrono::milliseconds extend_timeout{30000};          // extend: rescans, resize map, the new size
    std::chrono::milliseconds path_removal_timeout{5000};     // disconnect: multipathd stops listing removed paths
    std::chrono::milliseconds map_removal_timeout{10000};     // disconnect: `multipathd del map` after a failed flush
    // false (default): the CHAP password stays in the node record (0600, root's, written atomically, never via
    // argv), as os-brick leaves it, so iscsid can log in again by itself after its own restart; true: removed
    // right after login (the session keeps it), and iscsid then cannot recover a dropped session after its restart.
    bool scrub_chap_from_node_record = false;
    // iscsi_ifaces: every (portal, iface) pair is a path; `default` alone is what iscsiadm does without -I.
    std::vector<IscsiIface> iscsi_ifaces{IscsiIface{std::string(default_iface), {}}};
};

// The network path's own keys.
struct NetDiskOptions {
    // cleanup considers only secrets whose usage continues with this after "iscsi-volume-driver:" (a volume id
    // prefix); empty: every secret of this driver. For hosts (and test suites) that share one libvirtd.
    std::string cleanup_volume_prefix;
    // true: CHAP secrets are defined ephemeral='yes' (libvirtd's memory only, never a file; about 8x cheaper to
    // define and undefine, so parallel attaches stop queueing on libvirtd's secret file syncs). They vanish when
    // libvirtd restarts: see README, "Ephemeral secrets".
    bool libvirt_ephemeral_secrets = false;
    // Root-only directory (ivd::PrivateDir) of the records of which connects still need a volume's CHAP secret,
    // and the flock files that serialise one volume's secret steps across processes. Persistent, as libvirt's
    // secrets are.
    std::string state_dir = "/var/lib/iscsi-volume-driver";
    std::chrono::milliseconds state_lock_timeout{30000};  // bounded wait for another process's secret steps
};

// --- What each room receives: the parts it reads, flat (the rooms use the field names directly). ---

// host_facts/: detect_host_facts.
struct HostFactsConfig : LibvirtConfig, HostToolsConfig, HostFactsOptions {};

// net_disk/: NetworkDiskPath and its factory.
struct NetDiskConfig : GuestDiskConfig, ProbeConfig, LibvirtConfig, NetDiskOptions {
    std::string initiator_name;                                     // extend: when device_info names none
    std::string initiator_name_file{default_initiator_name_file};  // named when no initiator is known
};

// host_path/: HostPath, RealHostOps and their factory.
struct HostPathConfig : GuestDiskConfig, HostToolsConfig, HostPathOptions {
    std::chrono::milliseconds probe_timeout = ProbeConfig{}.probe_timeout;  // LU identity and discovery
    bool enforce_multipath = false;                                         // a degraded map is an error
    std::string initiator_name_file{default_initiator_name_file};          // named when no initiator is known
    // The crash journal of host attachments (state_dir/host-attachments, see attachment_journal.hpp): shared with
    // the network path's records, and the same bounded wait for another process's steps on the same volume.
    std::string state_dir = NetDiskOptions{}.state_dir;
    std::chrono::milliseconds state_lock_timeout = NetDiskOptions{}.state_lock_timeout;
};

// The whole configuration (driver/ keeps it and hands each room its part).
struct DriverConfig : DecideConfig, GuestDiskConfig, ProbeConfig, LibvirtConfig, HostToolsConfig, HostFactsOptions,
                      HostPathOptions, NetDiskOptions {
    std::chrono::seconds host_facts_ttl{300};  // driver/: re-detect after this long; 0: only when a decision fails
    std::string connector_ip;    // driver/: connector "ip" (Nova: my_block_storage_ip); "" = the detected address
    std::string connector_host;  // driver/: connector "host" (Nova: host); "" = gethostname()

    std::vector<std::string> unknown_keys;  // reported in the log, not an error

    // As given (the parse resolves them into scrub_chap_from_node_record): the old key keeps its meaning, so an
    // operator's explicit keep_chap_in_node_record = false still scrubs.
    std::optional<bool> scrub_chap_key;
    std::optional<bool> keep_chap_key;

    HostFactsConfig host_facts() const;
    NetDiskConfig net_disk() const;
    HostPathConfig host_path() const;
};

Result<DriverConfig> parse_driver_config(const json::Value &document);

// Every key parse_driver_config knows, in table order (what README's config table must list).
std::vector<std::string_view> driver_config_keys();

}  // namespace ivd::request
