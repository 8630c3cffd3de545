// volume-host's own libvirt use: attach and detach a disk on a running domain. Separate from the driver's
// connection on purpose: the host owns the domain, the driver only hands out disk XML.
#pragma once

#include "disk_source.hpp"
#include "shim_error.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace volume_host {

// Errors of this file carry exit_libvirt and libvirt's own message.
using MaybeError = std::optional<ShimError>;

struct DomainDisk {
    std::string target_dev;  // "sda"
    std::string bus;         // "scsi"
    std::string alias;       // "scsi0-0-0-0" (live XML only)
    std::string xml;         // the <disk> element as libvirt reports it
    DiskSource source;
};

// How volume-host reaches libvirt, and how long it waits ([libvirt] in the INI file).
struct LibvirtBounds {
    std::string uri = "qemu:///system";
    // virConnectOpen must finish within this; a daemon that accepts and never answers is a `timeout` error.
    std::chrono::milliseconds connect_timeout{10000};
    // libvirt keepalive on the open connection: a daemon silent for interval * (count + 1) seconds ends every
    // call in flight with an error instead of a hang. interval 0 turns keepalive off.
    int keepalive_interval_s = 5;
    unsigned keepalive_count = 3;
};

// True once a connect attempt timed out and left its thread blocked in virConnectOpen: the process should then
// end with _Exit after flushing its output (see main).
bool libvirt_thread_abandoned();

// Pure XML helpers (pugixml), usable without libvirt.
std::vector<DomainDisk> disks_in_domain_xml(const std::string &domain_xml);
// The next sdX name (sda..sdz, sdaa..sdzz) unused by any disk in the given domain XML documents.
Outcome<std::string> first_free_scsi_dev(const std::vector<std::string> &domain_xmls);
// target/@dev of a <disk> element.
Outcome<std::string> disk_target_dev(const std::string &disk_xml);

struct DetachOutcome {
    bool was_attached = false;  // false: the disk was already gone (not an error)
    std::chrono::milliseconds waited{0};
};

class DomainSession {
public:
    // Connects to libvirt within bounds.connect_timeout (code `timeout`, or `unreachable` when the connection
    // is refused), turns on keepalive, and looks the domain up by name.
    static Outcome<std::unique_ptr<DomainSession>> open(const LibvirtBounds &bounds, const std::string &domain);
    static Outcome<std::unique_ptr<DomainSession>> open(const std::string &uri, const std::string &domain);
    DomainSession(const DomainSession &) = delete;
    DomainSession &operator=(const DomainSession &) = delete;
    ~DomainSession();

    const std::string &domain_name() const { return domain_; }
    bool persistent() const;
    Outcome<std::string> uuid() const;
    // Live XML, plus the persistent config for persistent domains.
    Outcome<std::vector<DomainDisk>> live_disks() const;
    Outcome<std::string> pick_free_scsi_dev() const;

    // Live, plus config when the domain is persistent.
    MaybeError attach_disk(const std::string &disk_xml);
    // The first disk (live, then config when persistent) backed by the same storage as `source`, if any.
    Outcome<std::optional<DomainDisk>> find_same_storage(const DiskSource &source) const;
    // Detaches the disk with this target dev (live, plus config when persistent) and waits until QEMU has
    // really released it, or the deadline passes (an error). With `expected`, a disk at that dev backed by other
    // storage is left alone: a `disk_mismatch` error naming what holds the dev, before anything is detached.
    Outcome<DetachOutcome> detach_disk(const std::string &target_dev, const DiskSource *expected = nullptr,
                                       std::chrono::milliseconds deadline = std::chrono::seconds(10));

private:
    struct Handles;
    DomainSession(std::string domain, std::unique_ptr<Handles> handles);
    Outcome<std::string> domain_xml(bool inactive) const;
    Outcome<std::optional<DomainDisk>> disk_at(const std::string &target_dev, bool inactive) const;

    std::string domain_;
    std::unique_ptr<Handles> h_;
};

}  // namespace volume_host
