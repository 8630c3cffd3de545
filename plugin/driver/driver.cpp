#include "driver/driver.hpp"

#include "core/json_output.hpp"
#include "driver/path_factories.hpp"
#include "request/iscsi_name.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <fmt/format.h>

#include <utility>

#include <sys/utsname.h>

namespace ivd {

namespace {

// The connector's "platform", as os-brick reports it (platform.machine(): uname's machine).
std::string machine_name() {
    struct utsname u {};
    if (::uname(&u) != 0) return "unknown";
    return u.machine;
}

// Clears CHAP passwords out of a parsed connection_info when it goes out of scope, on every return path.
class WipeOnExit {
public:
    explicit WipeOnExit(json::Value &doc) : doc_(doc) {}
    WipeOnExit(const WipeOnExit &) = delete;
    WipeOnExit &operator=(const WipeOnExit &) = delete;
    ~WipeOnExit() { request::wipe_secrets_in_connection_info(doc_); }

private:
    json::Value &doc_;
};

}  // namespace

Driver::Driver(request::DriverConfig config, Logger log, DriverParts parts)
    : config_(std::move(config)), log_(log), network_(std::move(parts.network)), host_(std::move(parts.host)) {
    if (parts.facts) {
        facts_ = std::make_shared<const HostFacts>(std::move(*parts.facts));
        facts_fixed_ = true;
    }
    detect_ = parts.detect ? std::move(parts.detect) : detect_host_facts;
    domain_block_devices_ = parts.domain_block_devices
                                ? std::move(parts.domain_block_devices)
                                : [this] { return list_domain_block_devices(config_.host_facts(), log_); };
    if (!network_) network_ = make_network_path(config_.net_disk(), log_);
    if (!host_) host_ = make_host_path(config_.host_path(), log_);
}

Result<std::unique_ptr<Driver>> Driver::create(const char *config_json, Logger log, DriverParts parts) {
    auto doc = request::parse_object(config_json, "config", /*null_ok=*/true);
    if (!doc) {
        Error e = std::move(doc).error();
        e.status = Status::config;
        return e;
    }
    auto config = request::parse_driver_config(*doc);
    if (!config) return std::move(config).error();
    if (!config->initiator_name.empty()) {
        if (auto problem = request::iscsi_name_problem(config->initiator_name); !problem.empty()) {
            return make_error(Status::config, "config initiator_name: " + problem, "config", "initiator_name");
        }
    }
    for (const std::string &key : config->unknown_keys) {
        log.warning("config", "unknown key {} ignored", request::quote_for_message(key));
    }
    return std::unique_ptr<Driver>(new Driver(std::move(config).value(), log, std::move(parts)));
}

std::shared_ptr<const HostFacts> Driver::facts(Freshness want) {
    // Detection is a libvirt call plus a few file reads and socket connects: cheap, but not per attach. The
    // cache is refreshed when it expires (host_facts_ttl; picks up e.g. a multipathd started later for the
    // connector), when it is partial (libvirt was unreachable), and when a decision failed for lack of a
    // capability (the operator may just have installed qemu-block-extra): then the attach is decided again on
    // fresh facts instead of failing until the host service restarts. A minimum age keeps a burst of failing
    // attaches from re-probing each.
    using namespace std::chrono_literals;
    constexpr auto min_age_for_refresh = 1s;
    const std::lock_guard<std::mutex> lock(facts_mutex_);
    if (facts_fixed_) return facts_;
    const auto now = std::chrono::steady_clock::now();
    const auto age = now - facts_time_;
    const bool stale = !facts_ || (config_.host_facts_ttl.count() > 0 && age >= config_.host_facts_ttl) ||
                       ((!facts_->complete || want == Freshness::refresh) && age >= min_age_for_refresh);
    if (stale) {
        if (facts_) log_.info("host_facts", "detecting host capabilities again ({})",
                              want == Freshness::refresh ? "a decision failed for lack of a capability"
                              : !facts_->complete        ? "the last detection was partial"
                                                         : "cache expired");
        facts_ = std::make_shared<const HostFacts>(detect_(config_.host_facts(), log_));
        facts_time_ = std::chrono::steady_clock::now();  // age counts from when the facts were known
    }
    return facts_;
}

AttachPathImpl &Driver::path_impl(AttachPath path) { return path == AttachPath::network ? *network_ : *host_; }

Result<std::string> Driver::connector_properties(std::uint32_t flags) {
    if (flags != 0) return make_error(Status::invalid_argument, "flags: must be 0", "flags");
    const auto facts_ptr = facts();
    const HostFacts &f = *facts_ptr;
    const HostCapabilities &c = f.capabilities;
    json::Value out = json::Value::object();
    if (!f.initiator.empty()) out["initiator"] = f.initiator;
    out["ip"] = config_.connector_ip.empty() ? f.ip : config_.connector_ip;
    out["host"] = config_.connector_host.empty() ? f.host_name : config_.connector_host;
    // The host's side of the spec's multipath=True: only when the host path can really multipath.
    out["multipath"] = c.multipath && c.host_iscsi;
    out["platform"] = machine_name();
    out["os_type"] = "linux";
    out["do_local_attach"] = false;
    // Our own facts, for operators and for the compute service's logs: what each path needs and has.
    json::Value &caps = out["iscsi_volume_driver"];
    caps["qemu_iscsi"] = c.qemu_iscsi;
    caps["qemu_iscsi_reason"] = c.qemu_iscsi_reason;
    caps["emulator"] = f.emulator;
    caps["emulator_source"] = f.emulator_source;
    if (!f.qemu_module.empty()) caps["qemu_iscsi_module"] = f.qemu_module;
    caps["qemu_version"] = format_version(f.qemu_version);
    caps["libvirt_daemon_version"] = format_version(f.libvirt_daemon_version);
    caps["libvirt_library_version"] = format_version(f.libvirt_library_version);
    if (!f.libvirt_problem.empty()) caps["libvirt_problem"] = f.libvirt_problem;
    caps["libvirt_xml"]["auth_in_source"] = f.xml.auth_in_source;
    caps["libvirt_xml"]["initiator"] = f.xml.initiator;
    if (!f.xml.reason.empty()) caps["libvirt_xml"]["reason"] = f.xml.reason;
    caps["host_iscsi"] = c.host_iscsi;
    caps["host_iscsi_reason"] = c.host_iscsi_reason;
    caps["iscsiadm"] = f.iscsiadm;
    caps["iscsid"] = f.iscsid;
    caps["multipath"] = c.multipath;
    caps["multipath_reason"] = c.multipath_reason;
    caps["multipathd"] = f.multipathd;
    caps["initiator_source"] = f.initiator_source;
    return to_json(out);
}

Result<std::string> Driver::connect_volume(const char *connection_info, const char *connector_json,
                                           const char *disk_info_json, std::uint32_t flags) {
    if (flags != 0) {
        return make_error(Status::invalid_argument, "flags: no connect flags are defined; must be 0", "flags");
    }
    auto ci_doc = request::parse_object(connection_info, "connection_info");
    if (!ci_doc) return std::move(ci_doc).error();
    const WipeOnExit wipe(*ci_doc);
    auto volume = request::parse_connection_info(*ci_doc);
    if (!volume) return std::move(volume).error();

    auto connector_doc = request::parse_object(connector_json, "connector");
    if (!connector_doc) return std::move(connector_doc).error();
    auto connector = request::parse_connector(*connector_doc);
    if (!connector) return std::move(connector).error();

    auto disk_doc = request::parse_object(disk_info_json, "disk_info", /*null_ok=*/true);
    if (!disk_doc) return std::move(disk_doc).error();
    auto disk = request::parse_disk_info(*disk_doc, /*dev_required=*/abi_version_ < 2);
    if (!disk) return std::move(disk).error();

    auto known = facts();
    auto decision = decide_path(config_, *connector, known->capabilities);
    if (!decision && decision.error().status == Status::unsupported) {
        // A capability was missing: the host may have changed since detection; decide once more on fresh facts.
        if (auto fresh = facts(Freshness::refresh); fresh != known) {
            decision = decide_path(config_, *connector, fresh->capabilities);
            known = std::move(fresh);
        }
    }
    if (!decision) return std::move(decision).error();

    const auto guard = locks_.lock(volume->volume_key());
    log_.info("connect", "{}: {} path ({})", volume->volume_key(), attach_path_name(decision->path), decision->reason);
    auto device_info = path_impl(decision->path).connect(ConnectContext{*volume, *connector, *disk, *decision, *known});
    if (!device_info) return std::move(device_info).error();
    device_info->driver = "iscsi";
    device_info->attach_path = attach_path_name(decision->path);
    device_info->path_reason = decision->reason;
    device_info->volume_id = volume->volume_id;
    return device_info->to_json_text();
}

Result<void> Driver::disconnect_volume(const char *connection_info, const char *device_info_json,
                                       std::uint32_t flags) {
    constexpr std::uint32_t known = VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS;
    if ((flags & ~known) != 0) {
        return make_error(Status::invalid_argument,
                          fmt::format("flags: unknown bits 0x{:x}; only VD_DISCONNECT_FORCE and "
                                      "VD_DISCONNECT_IGNORE_ERRORS are defined", flags & ~known),
                          "flags");
    }
    const DisconnectOptions options{(flags & VD_DISCONNECT_FORCE) != 0, (flags & VD_DISCONNECT_IGNORE_ERRORS) != 0};
    auto ci_doc = request::parse_object(connection_info, "connection_info");
    if (!ci_doc) return std::move(ci_doc).error();
    const WipeOnExit wipe(*ci_doc);
    auto volume = request::parse_connection_info(*ci_doc);
    if (!volume) return std::move(volume).error();

    auto device_doc = request::parse_object(device_info_json, "device_info", /*null_ok=*/true);
    if (!device_doc) return std::move(device_doc).error();
    std::optional<request::DeviceInfo> device_info;
    if (!device_doc->empty()) {
        auto parsed = request::parse_device_info(*device_doc);
        if (!parsed) return std::move(parsed).error();
        device_info = std::move(parsed).value();
    }

    std::optional<AttachPath> path;
    if (device_info) {
        path = device_info->is_network() ? AttachPath::network : AttachPath::host;
    } else if (config_.path == request::PathChoice::network) {
        path = AttachPath::network;
    } else if (config_.path == request::PathChoice::host) {
        path = AttachPath::host;
    }

    const auto guard = locks_.lock(volume->volume_key());
    if (path) {
        log_.info("disconnect", "{}: {} path", volume->volume_key(), attach_path_name(*path));
        return path_impl(*path).disconnect(*volume, device_info ? &*device_info : nullptr, options);
    }
    // Without device_info the path that served the volume is unknown: undo both; each is idempotent.
    log_.info("disconnect", "{}: no device_info, cleaning up both paths", volume->volume_key());
    auto network = network_->disconnect(*volume, nullptr, options);
    auto host = host_->disconnect(*volume, nullptr, options);
    if (!network && network.error().status != Status::not_implemented) return network;
    if (!host && host.error().status != Status::not_implemented) return host;
    if (!network && !host) return network;
    return {};
}

namespace {

// connection_info and device_info as disk_config and extend_volume take them: both required.
struct Connected {
    json::Value ci_doc;
    request::VolumeRequest volume;
    request::DeviceInfo device_info;
};

Result<void> parse_connected(const char *connection_info, const char *device_info_json, Connected &out) {
    auto ci_doc = request::parse_object(connection_info, "connection_info");
    if (!ci_doc) return std::move(ci_doc).error();
    out.ci_doc = std::move(ci_doc).value();
    auto volume = request::parse_connection_info(out.ci_doc);
    if (!volume) return std::move(volume).error();
    out.volume = std::move(volume).value();
    auto device_doc = request::parse_object(device_info_json, "device_info");
    if (!device_doc) return std::move(device_doc).error();
    auto info = request::parse_device_info(*device_doc);
    if (!info) return std::move(info).error();
    out.device_info = std::move(info).value();
    return {};
}

}  // namespace

Result<std::string> Driver::disk_config(const char *connection_info, const char *device_info_json,
                                        const char *disk_info_json, std::uint32_t flags) {
    if (flags != 0) return make_error(Status::invalid_argument, "flags: no disk_config flags are defined; must be 0", "flags");
    Connected c;
    const WipeOnExit wipe(c.ci_doc);
    if (auto r = parse_connected(connection_info, device_info_json, c); !r) return std::move(r).error();
    auto disk_doc = request::parse_object(disk_info_json, "disk_info");
    if (!disk_doc) return std::move(disk_doc).error();
    auto disk = request::parse_disk_info(*disk_doc);
    if (!disk) return std::move(disk).error();
    const AttachPath path = c.device_info.is_network() ? AttachPath::network : AttachPath::host;
    return path_impl(path).disk_config(c.volume, c.device_info, *disk);
}

Result<std::string> Driver::extend_volume(const char *connection_info, const char *device_info_json,
                                          std::uint32_t flags) {
    if (flags != 0) return make_error(Status::invalid_argument, "flags: no extend flags are defined; must be 0", "flags");
    Connected c;
    const WipeOnExit wipe(c.ci_doc);
    if (auto r = parse_connected(connection_info, device_info_json, c); !r) return std::move(r).error();
    const AttachPath path = c.device_info.is_network() ? AttachPath::network : AttachPath::host;
    const auto guard = locks_.lock(c.volume.volume_key());
    auto size = path_impl(path).extend(c.volume, c.device_info);
    if (!size) return std::move(size).error();
    json::Value out = json::Value::object();
    out["size_bytes"] = static_cast<unsigned long long>(*size);
    return to_json(out);
}

Result<std::string> Driver::cleanup(std::uint32_t flags) {
    if ((flags & ~VD_CLEANUP_DRY_RUN) != 0) {
        return make_error(Status::invalid_argument,
                          fmt::format("flags: unknown bits 0x{:x}; only VD_CLEANUP_DRY_RUN is defined",
                                      flags & ~VD_CLEANUP_DRY_RUN),
                          "flags");
    }
    const bool dry_run = (flags & VD_CLEANUP_DRY_RUN) != 0;
    // Phase 1, read only: every path lists its leftovers. A path that cannot scan fails the whole call before
    // anything is removed, because "unused" was not proven.
    struct Found {
        const char *path;
        AttachPathImpl *impl;
        std::vector<Leftover> items;
    };
    std::vector<Found> found;
    json::Value report = json::Value::object();
    report["dry_run"] = dry_run;
    json::Value &paths = report["paths"] = json::Value::object();
    // Which block devices domains use, asked once for every path (the host path keeps the attachments behind them).
    CleanupContext context;
    if (auto devices = domain_block_devices_(); devices) {
        context.domain_block_devices = std::move(devices).value();
    } else {
        context.domains_error = devices.error().message;
        log_.warning("cleanup", "cannot list the block devices of libvirt's domains: {}", context.domains_error);
    }
    for (const auto &[name, impl] : {std::pair<const char *, AttachPathImpl *>{"network", network_.get()},
                                     std::pair<const char *, AttachPathImpl *>{"host", host_.get()}}) {
        auto items = impl->find_leftovers(context);
        if (!items) {
            if (items.error().status == Status::not_implemented) {
                paths[name] = fmt::format("not scanned: {}", items.error().message);
                continue;
            }
            return std::move(items).error().context(fmt::format("cleanup of the {} path; nothing was removed", name));
        }
        paths[name] = "scanned";
        found.push_back(Found{name, impl, std::move(items).value()});
    }

    // Phase 2: remove what is unused and removable; keep and report the rest.
    unsigned removed = 0, kept = 0, failed = 0, reported = 0, total = 0;
    json::Value &rows = report["items"] = json::Value::array();
    for (const Found &f : found) {
        for (const Leftover &item : f.items) {
            ++total;
            json::Value row = item.detail;
            row["path"] = f.path;
            row["kind"] = item.kind;
            row["name"] = item.name;
            row["reason"] = item.reason;
            if (item.in_use) {
                row["action"] = "kept";
                ++kept;
            } else if (!item.removable) {
                row["action"] = "reported";
                ++reported;
            } else if (dry_run) {
                row["action"] = "would_remove";
            } else if (auto r = f.impl->remove_leftover(item); !r) {
                row["action"] = "failed";
                row["error"] = r.error().message;
                ++failed;
                log_.error("cleanup", "{} {}: removing failed: {}", item.kind, item.name, r.error().message);
            } else {
                row["action"] = "removed";
                ++removed;
                log_.info("cleanup", "removed {} {} ({})", item.kind, item.name, item.reason);
            }
            rows.append(row);
        }
    }
    report["found"] = total;
    report["removed"] = removed;
    report["kept"] = kept;
    report["failed"] = failed;
    report["reported"] = reported;
    return to_json(report);
}

}  // namespace ivd
