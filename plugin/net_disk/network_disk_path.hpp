// The QEMU-initiator path: choose a healthy portal, keep the CHAP password in a libvirt secret, emit a
// <disk type='network'> for libvirt. The host never logs in.
#pragma once

#include "core/log.hpp"
#include "driver/attach_path.hpp"
#include "iscsi/iscsi_probe.hpp"
#include "libvirt/domain_disks.hpp"
#include "libvirt/secret_store.hpp"
#include "net_disk/attachment_ledger.hpp"
#include "net_disk/secret_lifetime.hpp"
#include "request/driver_config.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ivd::net_disk {

// Prefix of every libvirt secret usage name this driver defines, so a cleanup can find what it left.
inline constexpr std::string_view secret_usage_prefix = "iscsi-volume-driver:";

// The usage name of a volume's CHAP secret: unique per volume and recognisably ours.
std::string secret_usage_for(const request::VolumeRequest &volume);

using Prober = std::function<std::vector<iscsi::ProbeResult>(const std::vector<request::Target> &,
                                                             const iscsi::ProbeOptions &)>;

class NetworkDiskPath final : public AttachPathImpl {
public:
    // list_references unset: only the attachment records decide whether a secret is still needed, and cleanup
    // is refused (it cannot prove a secret unused). ledger unset: a MemoryLedger (one process: tests, benchmarks).
    NetworkDiskPath(request::NetDiskConfig config, Logger log, std::shared_ptr<libvirt::SecretStore> secrets,
                    Prober prober, DiskSecretLister list_references = {},
                    std::shared_ptr<AttachmentLedger> ledger = {});

    Result<request::DeviceInfo> connect(const ConnectContext &context) override;
    Result<void> disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                            DisconnectOptions options) override;
    // Our secrets (usage prefix) that no domain disk references, by usage or by UUID, and their records.
    Result<std::string> disk_config(const request::VolumeRequest &volume, const request::DeviceInfo &device_info,
                                    const request::DiskTarget &disk) override;
    // READ CAPACITY 16 on the portal QEMU uses.
    Result<std::uint64_t> extend(const request::VolumeRequest &volume, const request::DeviceInfo &device_info) override;
    Result<std::vector<Leftover>> find_leftovers(const CleanupContext &context) override;
    Result<void> remove_leftover(const Leftover &leftover) override;

private:
    struct PortalChoice {
        std::size_t index = 0;
        json::Value report = json::Value::array();  // each portal's probe outcome
        std::string why;
    };
    Result<PortalChoice> choose_portal(const request::VolumeRequest &volume, const std::string &initiator);

    request::NetDiskConfig config_;
    Logger log_;
    Prober prober_;
    SecretLifetime secrets_;
};

}  // namespace ivd::net_disk
