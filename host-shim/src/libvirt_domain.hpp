// volume-host's own libvirt use: attach and detach a disk on a running domain. Separate from the driver's
// connection on purpose: the host owns the domain, the driver only hands out disk XML.
#pragma once

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
};

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
    // Connects to libvirt and looks the domain up by name.
    static Outcome<std::unique_ptr<DomainSession>> open(const std::string &uri, const std::string &domain);
    DomainSession(const DomainSession &) = delete;
    DomainSession &operator=(const DomainSession &) = delete;
    ~DomainSession();

    const std::string &domain_name() const { return domain_; }
    bool persistent() const;
    // Live XML, plus the persistent config for persistent domains.
    Outcome<std::vector<DomainDisk>> live_disks() const;
    Outcome<std::string> pick_free_scsi_dev() const;

    // Live, plus config when the domain is persistent.
    MaybeError attach_disk(const std::string &disk_xml);
    // Detaches the disk with this target dev (live, plus config when persistent) and waits until QEMU has
    // really released it, or the deadline passes (an error).
    Outcome<DetachOutcome> detach_disk(const std::string &target_dev,
                                       std::chrono::milliseconds deadline = std::chrono::seconds(10));

private:
    struct Handles;
    DomainSession(std::string domain, std::unique_ptr<Handles> handles);
    Outcome<std::string> domain_xml(bool inactive) const;

    std::string domain_;
    std::unique_ptr<Handles> h_;
};

}  // namespace volume_host
