#include "driver/driver.hpp"

#include "core/json_output.hpp"
#include "driver/path_factories.hpp"
#include "request/iscsi_name.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

// Phase 1 of cleanup, read only: every path lists its leftovers. Each path's scan stands alone: a path that cannot
// scan (the network path without libvirt) is reported as not scanned, with why ("not_scanned", "partial"), and
// nothing of it is touched; the others go on (the host path undoes half-done attachments without asking
// libvirt). Only when no path could scan does the call fail, having removed nothing.
struct CleanupFound {
    const char *path;
    AttachPathImpl *impl;
    std::vector<Leftover> items;
};

Result<std::vector<CleanupFound>> scan_cleanup_paths(const std::vector<std::pair<const char *, AttachPathImpl *>> &impls,
                                                     const CleanupContext &context, const Logger &log,
                                                     json::Value &report) {
    std::vector<CleanupFound> found;
    // Built apart and moved in at the end: a reference into `report` would dangle once another member is added.
    json::Value paths = json::Value::object();
    json::Value not_scanned = json::Value::array();
    std::vector<std::string> errors;
    Status first_status = Status::backend;
    for (const auto &[name, impl] : impls) {
        auto items = impl->find_leftovers(context);
        if (items) {
            paths[name] = "scanned";
            found.push_back(CleanupFound{name, impl, std::move(items).value()});
            continue;
        }
        paths[name] = fmt::format("not scanned: {}", items.error().message);
        if (items.error().status == Status::not_implemented) continue;  // this path leaves nothing to clean up
        json::Value row = json::Value::object();
        row["path"] = name;
        row["code"] = status_code_name(items.error().status);
        row["reason"] = items.error().message;
        not_scanned.append(row);
        if (errors.empty()) first_status = items.error().status;
        errors.push_back(fmt::format("{} path: {}", name, items.error().message));
        log.warning("cleanup", "the {} path was not scanned, nothing of it is touched: {}", name, items.error().message);
    }
    if (found.empty() && !errors.empty()) {
        return make_error(first_status, fmt::format("cleanup: no path could scan, nothing was removed: {}",
                                                    fmt::join(errors, "; ")));
    }
    report["paths"] = std::move(paths);
    report["not_scanned"] = std::move(not_scanned);
    // Not every path was looked at: the report is true of the scanned paths only.
    report["partial"] = !errors.empty();
    return found;
}

// Phase 2: remove what is unused and removable; keep and report the rest.
void remove_cleanup_items(const std::vector<CleanupFound> &found, bool dry_run, const Logger &log, json::Value &report) {
    unsigned removed = 0, kept = 0, failed = 0, reported = 0, total = 0;
    json::Value &rows = report["items"] = json::Value::array();
    for (const CleanupFound &f : found) {
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
                log.error("cleanup", "{} {}: removing failed: {}", item.kind, item.name, r.error().message);
            } else {
                row["action"] = "removed";
                ++removed;
                log.info("cleanup", "removed {} {} ({})", item.kind, item.name, item.reason);
            }
            rows.append(row);
        }
    }
    report["found"] = total;
    report["removed"] = removed;
    report["kept"] = kept;
    report["failed"] = failed;
    report["reported"] = reported;
}

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
    // Parsed straight into the request types (no json::Value); the copy that held a password is wiped.
    auto volume = request::parse_connection_info_text(connection_info);
    if (!volume) return std::move(volume).error();
    auto connector = request::parse_connector_text(connector_json);
    if (!connector) return std::move(connector).error();
    auto disk = request::parse_disk_info_text(disk_info_json, /*null_ok=*/true, /*dev_required=*/abi_version_ < 2);
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

    const std::string key = volume->volume_key();
    const auto guard = locks_.lock(key);
    log_.info("connect", "{}: {} path ({})", key, attach_path_name(decision->path), decision->reason);
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
    auto volume = request::parse_connection_info_text(connection_info);
    if (!volume) return std::move(volume).error();

    auto parsed = request::parse_device_info_text(device_info_json, /*null_ok=*/true);
    if (!parsed) return std::move(parsed).error();
    std::optional<request::DeviceInfo> device_info = std::move(parsed).value();

    std::optional<AttachPath> path;
    if (device_info) {
        path = device_info->is_network() ? AttachPath::network : AttachPath::host;
    } else if (config_.path == request::PathChoice::network) {
        path = AttachPath::network;
    } else if (config_.path == request::PathChoice::host) {
        path = AttachPath::host;
    }

    const std::string key = volume->volume_key();
    const auto guard = locks_.lock(key);
    if (path) {
        log_.info("disconnect", "{}: {} path", key, attach_path_name(*path));
        return path_impl(*path).disconnect(*volume, device_info ? &*device_info : nullptr, options);
    }
    // Without device_info the path that served the volume is unknown: undo both; each is idempotent.
    log_.info("disconnect", "{}: no device_info, cleaning up both paths", key);
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
    request::VolumeRequest volume;
    request::DeviceInfo device_info;
};

Result<void> parse_connected(const char *connection_info, const char *device_info_json, Connected &out) {
    auto volume = request::parse_connection_info_text(connection_info);
    if (!volume) return std::move(volume).error();
    out.volume = std::move(volume).value();
    auto info = request::parse_device_info_text(device_info_json, /*null_ok=*/false);
    if (!info) return std::move(info).error();
    out.device_info = std::move(**info);
    return {};
}

}  // namespace

Result<std::string> Driver::disk_config(const char *connection_info, const char *device_info_json,
                                        const char *disk_info_json, std::uint32_t flags) {
    if (flags != 0) return make_error(Status::invalid_argument, "flags: no disk_config flags are defined; must be 0", "flags");
    Connected c;
    if (auto r = parse_connected(connection_info, device_info_json, c); !r) return std::move(r).error();
    auto disk = request::parse_disk_info_text(disk_info_json, /*null_ok=*/false);
    if (!disk) return std::move(disk).error();
    const AttachPath path = c.device_info.is_network() ? AttachPath::network : AttachPath::host;
    return path_impl(path).disk_config(c.volume, c.device_info, *disk);
}

Result<std::string> Driver::extend_volume(const char *connection_info, const char *device_info_json,
                                          std::uint32_t flags) {
    if (flags != 0) return make_error(Status::invalid_argument, "flags: no extend flags are defined; must be 0", "flags");
    Connected c;
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
    json::Value report = json::Value::object();
    report["dry_run"] = dry_run;
    // Which block devices domains use, asked once for every path (the host path keeps the attachments behind them).
    CleanupContext context;
    if (auto devices = domain_block_devices_(); devices) {
        context.domain_block_devices = std::move(devices).value();
    } else {
        context.domains_error = devices.error().message;
        log_.warning("cleanup", "cannot list the block devices of libvirt's domains: {}", context.domains_error);
    }
    auto found = scan_cleanup_paths({{"network", network_.get()}, {"host", host_.get()}}, context, log_, report);
    if (!found) return std::move(found).error();
    remove_cleanup_items(*found, dry_run, log_, report);
    return to_json(report);
}

}  // namespace ivd
