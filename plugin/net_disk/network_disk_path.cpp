#include "net_disk/network_disk_path.hpp"

#include "driver/path_factories.hpp"
#include "request/json_input.hpp"
#include "xml/libvirt_xml.hpp"

#include <volume_driver/volume_driver.h>

#include <fmt/format.h>

#include <algorithm>

namespace ivd::net_disk {

using request::Target;

std::string secret_usage_for(const request::VolumeRequest &volume) {
    if (!volume.volume_id.empty()) return fmt::format("{}{}", secret_usage_prefix, volume.volume_id);
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

// Removes a freshly put secret unless the connect went through.
class SecretRollback {
public:
    SecretRollback(libvirt::SecretStore &store, std::string usage, const Logger &log)
        : store_(store), usage_(std::move(usage)), log_(log) {}
    SecretRollback(const SecretRollback &) = delete;
    SecretRollback &operator=(const SecretRollback &) = delete;
    ~SecretRollback() {
        if (committed_) return;
        if (auto r = store_.remove_iscsi_secret(usage_); !r) {
            log_.error("net_disk", "could not remove secret {} after a failed connect: {}", usage_, r.error().message);
        }
    }
    void commit() { committed_ = true; }

private:
    libvirt::SecretStore &store_;
    std::string usage_;
    const Logger &log_;
    bool committed_ = false;
};

}  // namespace

NetworkDiskPath::NetworkDiskPath(request::DriverConfig config, Logger log,
                                 std::shared_ptr<libvirt::SecretStore> secrets, Prober prober,
                                 DiskSecretLister list_references)
    : config_(std::move(config)),
      log_(log),
      secrets_(std::move(secrets)),
      prober_(std::move(prober)),
      list_references_(std::move(list_references)) {}

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

Result<json::Value> NetworkDiskPath::connect(const ConnectContext &context) {
    const request::VolumeRequest &volume = context.volume;
    const std::string &initiator = context.initiator();
    if (initiator.empty()) return missing_initiator_error(config_.initiator_name_file);
    auto choice = choose_portal(volume, initiator);
    if (!choice) return std::move(choice).error();
    const Target &target = volume.targets[choice->index];

    xml::NetworkDiskSpec spec;
    spec.target = target;
    spec.initiator = initiator;
    spec.options = request::guest_disk_options(volume, context.disk, config_);
    // Only the XML forms this libvirt accepts (older daemons want <auth> elsewhere and know no <initiator>).
    spec.auth_in_source = context.facts.xml.auth_in_source;
    spec.emit_initiator = context.facts.xml.initiator;
    if (!spec.emit_initiator) {
        log_.warning("net_disk", "{}: <initiator> omitted ({}); QEMU logs in with its default initiator name",
                     volume.volume_key(), context.facts.xml.reason);
    }

    json::Value device_info = json::Value::object(24);  // room for the driver's own keys too
    device_info.add("type", "network");
    device_info.add("protocol", "iscsi");
    std::optional<SecretRollback> rollback;
    if (volume.chap) {
        const std::string usage = secret_usage_for(volume);
        // Always (re)set the value: a reconnect after a password change must not keep the stale one.
        auto uuid = secrets_->put_iscsi_secret(
            usage, fmt::format("CHAP password of iSCSI volume {}", volume.volume_id.empty() ? target.iqn : volume.volume_id),
            volume.chap->password);
        if (!uuid) return std::move(uuid).error().context("defining the CHAP secret in libvirt");
        rollback.emplace(*secrets_, usage, log_);
        spec.auth = xml::DiskAuth{volume.chap->username, usage};
        device_info.add("secret_uuid", *uuid);
        device_info.add("secret_usage", usage);
        device_info.add("auth_username", volume.chap->username);
    }

    device_info.add("disk_xml", xml::network_disk_xml(spec));
    device_info.add("portal", target.portal.to_string());
    device_info.add("target_iqn", target.iqn);
    device_info.add("target_lun", static_cast<std::int64_t>(target.lun));
    device_info.add("dev", context.disk.dev);
    device_info.add("bus", request::bus_name(context.disk.bus));
    json::Value &targets = device_info.add("targets", json::Value::array(volume.targets.size()));
    for (const Target &t : volume.targets) targets.append(request::target_to_json(t));
    if (!choice->report.empty()) device_info.add("portal_choice", std::move(choice->report));
    device_info.add("portal_choice_reason", choice->why);
    if (rollback) rollback->commit();
    return device_info;
}

Result<void> NetworkDiskPath::disconnect(const request::VolumeRequest &volume, const json::Value *device_info,
                                         std::uint32_t flags) {
    std::string usage;
    if (device_info != nullptr) {
        if (const json::Value *u = request::member(*device_info, "secret_usage")) {
            auto s = request::read_string(*u, request::Where{"device_info", "secret_usage"}, {.max_bytes = 512});
            if (!s) return std::move(s).error();
            if (s->rfind(secret_usage_prefix, 0) != 0) {
                return request::invalid(request::Where{"device_info", "secret_usage"},
                                        "is not a secret this driver defined");
            }
            usage = std::move(s).value();
        } else if (volume.chap) {
            usage = secret_usage_for(volume);
        }
    } else {
        usage = secret_usage_for(volume);  // device_info lost: remove whatever connect may have defined
    }
    if (usage.empty()) return {};
    auto removed = secrets_->remove_iscsi_secret(usage);
    if (!removed) {
        if ((flags & VD_DISCONNECT_IGNORE_ERRORS) != 0) {
            log_.warning("net_disk", "ignored: removing secret {} failed: {}", usage, removed.error().message);
            return {};
        }
        return std::move(removed).error().context("removing the CHAP secret from libvirt");
    }
    return {};
}

Result<std::vector<Leftover>> NetworkDiskPath::find_leftovers() {
    if (!list_references_) {
        return make_error(Status::not_implemented, "cleanup: this network path cannot list the domains' disks");
    }
    const std::string prefix = std::string(secret_usage_prefix) + config_.cleanup_volume_prefix;
    // Secrets first, references second: a secret defined in between is not in the list, so it cannot be
    // judged against an older view of the domains.
    auto secrets = secrets_->list_iscsi_secrets(prefix);
    if (!secrets) return std::move(secrets).error().context("cleanup: listing this driver's libvirt secrets");
    auto refs = list_references_();
    if (!refs) return std::move(refs).error().context("cleanup: listing the secrets domains' disks reference");
    std::vector<Leftover> found;
    for (const libvirt::SecretEntry &secret : *secrets) {
        Leftover item;
        item.kind = "libvirt_secret";
        item.name = secret.usage;
        if (!secret.uuid.empty()) item.detail["uuid"] = secret.uuid;
        json::Value users = json::Value::array();
        for (const libvirt::SecretReference &ref : *refs) {
            const bool by_usage = !ref.usage.empty() && ref.usage == secret.usage;
            const bool by_uuid = !ref.uuid.empty() && !secret.uuid.empty() && ref.uuid == secret.uuid;
            if (!by_usage && !by_uuid) continue;
            json::Value u = json::Value::object();
            u["domain"] = ref.domain;
            u["view"] = ref.view;
            u["dev"] = ref.target_dev;
            users.append(u);
        }
        item.in_use = !users.empty();
        if (item.in_use) {
            const json::Value &first = users[0];
            item.reason = fmt::format("referenced by domain {} ({} XML, disk {}){}", first["domain"].as_string(),
                                      first["view"].as_string(), first["dev"].as_string(),
                                      users.size() > 1 ? fmt::format(" and {} more", users.size() - 1) : "");
            item.detail["referenced_by"] = users;
        } else {
            item.reason = "no domain's disk references it (live or persistent config): left by an interrupted "
                          "connect or a host that never disconnected";
        }
        found.push_back(std::move(item));
    }
    return found;
}

Result<void> NetworkDiskPath::remove_leftover(const Leftover &leftover) {
    if (leftover.kind != "libvirt_secret" || !std::string_view(leftover.name).starts_with(secret_usage_prefix)) {
        return make_error(Status::internal, "cleanup: not a secret of this driver: " + leftover.name);
    }
    return secrets_->remove_iscsi_secret(leftover.name);
}

}  // namespace ivd::net_disk

namespace ivd {

std::unique_ptr<AttachPathImpl> make_network_path(const request::DriverConfig &config, const Logger &log) {
    const libvirt::ConnectionOptions bounds{config.libvirt_open_timeout, config.libvirt_keepalive_interval_s,
                                            static_cast<unsigned>(config.libvirt_keepalive_count)};
    auto connection = std::make_shared<libvirt::Connection>(config.libvirt_uri, log, bounds);
    auto store = std::make_shared<libvirt::LibvirtSecretStore>(connection);
    return std::make_unique<net_disk::NetworkDiskPath>(
        config, log, std::move(store), iscsi::probe_targets,
        [connection] { return libvirt::list_disk_secret_references(*connection); });
}

}  // namespace ivd
