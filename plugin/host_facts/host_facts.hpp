// Detection of what this host can do (QEMU iSCSI support, host-side iSCSI, multipathd, libvirt versions) and
// who it is (initiator name, host name, address). Every file and socket looked at comes from HostFactsConfig.
#pragma once

#include "core/error.hpp"
#include "core/log.hpp"
#include "request/driver_config.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ivd {

// What this host can do, as detected (or forced by config).
struct HostCapabilities {
    bool qemu_iscsi = false;         // QEMU's iSCSI block driver is available to libvirt's emulator
    bool host_iscsi = false;         // the host can log in itself (iscsiadm + iscsid)
    bool multipath = false;          // multipathd is running and usable
    std::string qemu_iscsi_reason;   // why not, when false
    std::string host_iscsi_reason;
    std::string multipath_reason;
    // Set when qemu_iscsi could not be judged because libvirt did not answer (names the URI and why); the
    // network path then fails as libvirt's failure (libvirt_status: unreachable, timeout, auth), not as a
    // missing QEMU package.
    std::string libvirt_problem;
    Status libvirt_status = Status::unreachable;
};

// Which libvirt disk XML forms the daemon accepts (it is the daemon, not our client library, that parses it).
struct LibvirtXmlFeatures {
    bool auth_in_source = true;    // <auth> inside <source> (libvirt >= 3.9); else <auth> as a child of <disk>
    bool initiator = true;         // <initiator> inside <source> (libvirt >= 4.7); else omitted
    std::string reason;            // why a feature is off, or that the version is unknown; empty when all on
};

// From libvirt's version number (major * 1000000 + minor * 1000 + release); 0 = unknown: assume current.
LibvirtXmlFeatures libvirt_xml_features(std::uint64_t daemon_version);

// "9.0.0" from 9000000; "unknown" from 0.
std::string format_version(std::uint64_t version);

// Whether a QEMU emulator binary can open iSCSI volumes, and why (see qemu_iscsi.cpp for the method).
struct QemuIscsiCheck {
    bool available = false;
    std::string reason;
    std::string module;  // the block-iscsi.so looked at; empty for built-in or non-modular builds
};
// module_dir empty: the module directory compiled into the emulator (one of the distributions' usual ones).
QemuIscsiCheck check_qemu_iscsi(const std::string &emulator, const std::string &module_dir);

struct HostFacts {
    HostCapabilities capabilities;
    std::string initiator;  // this host's iSCSI initiator name; empty when unknown
    std::string initiator_source;
    std::string host_name;
    std::string ip;

    // QEMU, as libvirt will run it.
    std::string emulator;         // empty when unknown
    std::string emulator_source;  // "libvirt domain capabilities (kvm)", "config qemu_emulator", ...
    std::string qemu_module;      // the block-iscsi.so looked at, when the build is modular

    // libvirt.
    std::uint64_t libvirt_library_version = 0;  // virGetVersion: the libvirt this driver is linked with
    std::uint64_t libvirt_daemon_version = 0;   // virConnectGetLibVersion: the one that parses our XML; 0 unknown
    std::uint64_t qemu_version = 0;             // virConnectGetVersion (hypervisor); 0 unknown
    std::string libvirt_problem;                // why libvirt could not be asked; empty when it answered
    LibvirtXmlFeatures xml;

    // Host iSCSI and multipath details behind the capabilities.
    std::string iscsiadm;     // executable path, empty when missing
    bool iscsid = false;      // iscsid answers on its control socket
    bool multipathd = false;  // multipathd answers on its control socket

    // False when something transient (libvirt unreachable) left the facts partial: re-detect soon.
    bool complete = true;
};

// Probes the system (libvirt, files, daemon sockets). A few milliseconds: once per driver handle, then on
// expiry or when a decision fails for a capability reason (see Driver::facts).
HostFacts detect_host_facts(const request::HostFactsConfig &config, const Logger &log);

// The host block devices libvirt's domains use (live and persistent XML, <disk type='block'><source dev>), as
// written there: cleanup keeps the host attachments behind them. An error when libvirt cannot tell.
Result<std::vector<std::string>> list_domain_block_devices(const request::HostFactsConfig &config, const Logger &log);

// Reads "InitiatorName=..." from an open-iscsi initiatorname file; empty when absent or invalid.
std::string read_initiator_name_file(const std::string &path);

}  // namespace ivd
