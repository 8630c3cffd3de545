#include "net_disk/network_disk_path.hpp"

#include "driver/path_factories.hpp"
#include "request/json_input.hpp"
#include "xml/libvirt_xml.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ivd::net_disk {

using request::Target;

std::string secret_usage_for(const request::VolumeRequest &volume) {
    if (!volume.volume_id.empty()) {  // every connect and disconnect: joined without a format string
        std::string usage;
        usage.reserve(secret_usage_prefix.size() + volume.volume_id.size());
        return usage.append(secret_usage_prefix).append(volume.volume_id);
    }
    const Target &t = volume.targets.front();
    return fmt::format("{}{}/{}", secret_usage_prefix, t.iqn, t.lun);
}

namespace {

// One status for "every portal failed": the common cause when all agree, else unreachable.
Status all_failed_status(const std::vector<iscsi::ProbeResult> &results) {
    auto all = [&](iscsi::ProbeOutcome o) {
        return std::all_of(results.begin(), results.end(), [&](const auto &r) { return r.outcome == o; });
    };
    if (all(iscsi::ProbeOutcome::auth_failed)) return Status::auth;
    if (all(iscsi::ProbeOutcome::timeout)) return Status::timeout;
    if (all(iscsi::ProbeOutcome::target_not_found) || all(iscsi::ProbeOutcome::lun_unavailable)) {
        return Status::not_found;
    }
    return Status::unreachable;
}

// Undoes a connect's secret steps unless the connect went through: its own record, and the secret only when
// this connect created it and nothing else uses it.
class SecretRollback {
public:
    SecretRollback(SecretLifetime &secrets, SecretLifetime::Hold hold, const Logger &log)
        : secrets_(secrets), hold_(std::move(hold)), log_(log) {}
    SecretRollback(const SecretRollback &) = delete;
    SecretRollback &operator=(const SecretRollback &) = delete;
    ~SecretRollback() {
        if (committed_) return;
        if (auto r = secrets_.undo(hold_); !r) {
            log_.error("net_disk", "could not undo secret {} after a failed connect: {}", hold_.usage, r.error().message);
        }
    }
    void commit() { committed_ = true; }

private:
    SecretLifetime &secrets_;
    SecretLifetime::Hold hold_;
    const Logger &log_;
    bool committed_ = false;
};

}  // namespace

NetworkDiskPath::NetworkDiskPath(request::NetDiskConfig config, Logger log,
                                 std::shared_ptr<libvirt::SecretStore> secrets, Prober prober,
                                 DiskSecretLister list_references, std::shared_ptr<AttachmentLedger> ledger)
    : config_(std::move(config)),
      log_(log),
      prober_(std::move(prober)),
      secrets_(std::move(secrets), ledger ? std::move(ledger) : std::make_shared<MemoryLedger>(),
               std::move(list_references), log) {}

Result<NetworkDiskPath::PortalChoice> NetworkDiskPath::choose_portal(const request::VolumeRequest &volume,
                                                                     const std::string &initiator) {
    PortalChoice choice;
    const auto &targets = volume.targets;
    if (!config_.probe_portals) {
        // Nothing was probed: the first portal goes to QEMU, whose own login (no deadline of ours) reports it.
        choice.why = "probing disabled by config";
        return choice;
    }
    // A single portal is probed too: handed to QEMU unprobed, a portal that accepts and never answers would
    // hang the attach (and libvirt's domain lock) with no deadline; the probe bounds it by probe_timeout_ms.
    iscsi::ProbeOptions options;
    options.initiator = initiator;
    options.chap = volume.chap ? &*volume.chap : nullptr;
    options.timeout = config_.probe_timeout;
    const std::vector<iscsi::ProbeResult> results = prober_(targets, options);
    if (results.size() != targets.size()) {
        return make_error(Status::internal, "portal probe returned a result count that does not match the portals");
    }
    std::optional<std::size_t> chosen;
    std::string reasons;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const auto &r = results[i];
        json::Value row = request::target_to_json(targets[i], 4);
        row["outcome"] = iscsi::probe_outcome_name(r.outcome);
        row["elapsed_ms"] = static_cast<double>(r.elapsed.count()) / 1000.0;
        if (!r.detail.empty()) row["detail"] = r.detail;
        if (r.outcome == iscsi::ProbeOutcome::healthy && !chosen) {
            chosen = i;
            row["chosen"] = true;
        } else if (r.outcome != iscsi::ProbeOutcome::healthy) {
            reasons += fmt::format("{}{} ({} lun {}): {}{}", reasons.empty() ? "" : "; ",
                                   targets[i].portal.to_string(), targets[i].iqn, targets[i].lun,
                                   iscsi::probe_outcome_name(r.outcome), r.detail.empty() ? "" : " - " + r.detail);
        }
        choice.report.append(row);
    }
    if (!chosen) {
        return make_error(all_failed_status(results), fmt::format("no portal of the volume is usable: {}", reasons));
    }
    choice.index = *chosen;
    choice.why = targets.size() == 1 ? "the only portal is healthy"
                 : *chosen == 0        ? "first listed portal is healthy"
                              : fmt::format("skipped {} unhealthy portal(s): {}", *chosen, reasons);
    if (*chosen != 0) log_.warning("net_disk", "{}", choice.why);
    return choice;
}

Result<request::DeviceInfo> NetworkDiskPath::connect(const ConnectContext &context) {
    const request::VolumeRequest &volume = context.volume;
    const std::string &initiator = context.initiator();
    if (initiator.empty()) return missing_initiator_error(config_.initiator_name_file);
    auto choice = choose_portal(volume, initiator);
    if (!choice) return std::move(choice).error();
    const Target &target = volume.targets[choice->index];

    if (!context.facts.xml.initiator) {
        log_.warning("net_disk", "{}: <initiator> omitted ({}); QEMU logs in with its default initiator name",
                     volume.volume_key(), context.facts.xml.reason);
    }
    request::DeviceInfo device_info;
    request::NetworkDevice &net = device_info.device.emplace<request::NetworkDevice>();
    net.target = target;
    net.initiator = initiator;
    // Only the XML forms this libvirt accepts (older daemons want <auth> elsewhere and know no <initiator>).
    net.auth_in_source = context.facts.xml.auth_in_source;
    net.emit_initiator = context.facts.xml.initiator;
    std::optional<SecretRollback> rollback;
    if (volume.chap) {
        const std::string usage = secret_usage_for(volume);
        // Always (re)set the value: a reconnect after a password change must not keep the stale one.
        // The secret is shared by every attachment of the volume; this connect's record keeps it alive.
        auto hold = secrets_.acquire(
            usage, std::string("CHAP password of iSCSI volume ").append(volume.volume_id.empty() ? target.iqn : volume.volume_id),
            volume.chap->password);
        if (!hold) return std::move(hold).error();
        net.secret_uuid = hold->uuid;
        net.secret_usage = usage;
        net.attachment_id = hold->attachment_id;
        net.auth_username = volume.chap->username;
        rollback.emplace(secrets_, std::move(hold).value(), log_);
    }
    device_info.targets = volume.targets;
    if (!context.disk.dev.empty()) {  // ABI v2 connects without a guest device: no guest part
        auto xml = disk_config(volume, device_info, context.disk);
        if (!xml) return std::move(xml).error();
        device_info.guest = request::DeviceGuest{context.disk, std::move(xml).value()};
    }
    if (!choice->report.empty()) net.portal_choice = std::move(choice->report);
    net.portal_choice_reason = choice->why;
    if (rollback) rollback->commit();
    return device_info;
}

Result<std::string> NetworkDiskPath::disk_config(const request::VolumeRequest &volume,
                                                const request::DeviceInfo &device_info, const request::DiskTarget &disk) {
    const request::NetworkDevice &net = device_info.network();
    if (net.target.iqn.empty()) {
        return request::invalid(request::Where{"device_info", "target_iqn"}, "is required for a network disk");
    }
    xml::NetworkDiskSpec spec;
    spec.target = net.target;
    spec.initiator = net.initiator;
    spec.auth_in_source = net.auth_in_source.value_or(true);
    spec.emit_initiator = net.emit_initiator.value_or(true);
    if (device_info.version < 2 && device_info.guest) {
        // Version 1 kept these only inside the XML it wrote at connect.
        const auto forms = xml::read_network_disk_forms(device_info.guest->disk_xml);
        spec.initiator = forms.initiator;
        spec.emit_initiator = forms.emit_initiator;
        spec.auth_in_source = forms.auth_in_source;
    }
    if (!net.secret_usage.empty()) {
        spec.auth = xml::DiskAuth{net.auth_username.empty() && volume.chap ? volume.chap->username : net.auth_username,
                                  net.secret_usage};
    }
    spec.options = request::guest_disk_options(volume, disk, config_);
    return xml::network_disk_xml(spec);
}

Result<std::uint64_t> NetworkDiskPath::extend(const request::VolumeRequest &volume,
                                              const request::DeviceInfo &device_info) {
    const request::NetworkDevice &net = device_info.network();
    if (net.target.iqn.empty()) {
        return request::invalid(request::Where{"device_info", "target_iqn"}, "is required for a network disk");
    }
    std::string initiator = net.initiator;
    if (initiator.empty() && device_info.guest) initiator = xml::read_network_disk_forms(device_info.guest->disk_xml).initiator;
    if (initiator.empty()) initiator = config_.initiator_name;
    if (initiator.empty()) return missing_initiator_error(config_.initiator_name_file);
    // The probe's READ CAPACITY(16), on the portal QEMU uses, with the volume's CHAP and the probe deadline.
    iscsi::ProbeOptions options;
    options.initiator = initiator;
    options.chap = volume.chap ? &*volume.chap : nullptr;
    options.timeout = config_.probe_timeout;
    const auto results = prober_({net.target}, options);
    if (results.size() != 1) return make_error(Status::internal, "portal probe returned a result count that does not match");
    const iscsi::ProbeResult &r = results.front();
    if (r.outcome != iscsi::ProbeOutcome::healthy || r.size_bytes == 0) {
        return make_error(all_failed_status(results),
                          fmt::format("reading the capacity of {} ({} LUN {}) failed: {}{}", net.target.portal.to_string(),
                                      net.target.iqn, net.target.lun, iscsi::probe_outcome_name(r.outcome),
                                      r.detail.empty() ? "" : " - " + r.detail));
    }
    log_.info("net_disk", "{}: capacity {} bytes", volume.volume_key(), r.size_bytes);
    return r.size_bytes;
}

Result<void> NetworkDiskPath::disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                                         DisconnectOptions options) {
    std::string usage;
    std::string attachment_id;  // "" for a device_info of driver versions before attachment ids
    if (device_info != nullptr) {
        const request::NetworkDevice &net = device_info->network();
        if (!net.secret_usage.empty()) {
            if (net.secret_usage.rfind(secret_usage_prefix, 0) != 0) {
                return request::invalid(request::Where{"device_info", "secret_usage"},
                                        "is not a secret this driver defined");
            }
            usage = net.secret_usage;
        } else if (volume.chap) {
            usage = secret_usage_for(volume);
        }
        attachment_id = net.attachment_id;
    } else {
        usage = secret_usage_for(volume);  // device_info lost: remove whatever connect may have defined
    }
    if (usage.empty()) return {};
    auto released = secrets_.release(usage, attachment_id);
    if (!released) {
        if (options.ignore_errors) {
            log_.warning("net_disk", "ignored: releasing secret {} failed: {}", usage, released.error().message);
            return {};
        }
        return released;
    }
    return {};
}

Result<std::vector<Leftover>> NetworkDiskPath::find_leftovers(const CleanupContext &) {
    // Secrets are matched against the domains' secret references, which the path reads itself.
    return secrets_.find_leftovers(std::string(secret_usage_prefix) + config_.cleanup_volume_prefix);
}

Result<void> NetworkDiskPath::remove_leftover(const Leftover &leftover) { return secrets_.remove_leftover(leftover); }

}  // namespace ivd::net_disk

namespace ivd {

std::unique_ptr<AttachPathImpl> make_network_path(const request::NetDiskConfig &config, const Logger &log) {
    const libvirt::ConnectionOptions bounds{config.libvirt_open_timeout, config.libvirt_keepalive_interval_s,
                                            static_cast<unsigned>(config.libvirt_keepalive_count)};
    auto connection = std::make_shared<libvirt::Connection>(config.libvirt_uri, log, bounds);
    auto store = std::make_shared<libvirt::LibvirtSecretStore>(
        connection, config.libvirt_ephemeral_secrets ? xml::SecretStorage::ephemeral : xml::SecretStorage::persistent);
    return std::make_unique<net_disk::NetworkDiskPath>(
        config, log, std::move(store), iscsi::probe_targets,
        [connection] { return libvirt::list_disk_secret_references(*connection); },
        std::make_shared<net_disk::FileLedger>(config.state_dir, config.state_lock_timeout));
}

}  // namespace ivd
