#include "request/driver_config.hpp"

#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace ivd::request {

namespace {

Error config_error(Error e) {
    e.status = Status::config;
    return e;
}

Result<std::string> read_choice(const json::Value &v, const Where &where, std::initializer_list<std::string_view> allowed) {
    auto s = read_string(v, where, {.max_bytes = 32, .allow_empty = true});
    if (!s) return std::move(s).error();
    if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", a);
        return invalid(where, fmt::format("{} must be one of {}", quote_for_message(*s), list));
    }
    return s;
}

Result<Tristate> read_tristate(const json::Value &v, const Where &where) {
    if (v.is_string() && v.as_string() == "auto") return Tristate::automatic;
    auto b = read_flexible_bool(v, where);
    if (!b) return invalid(where, "must be \"auto\", true or false");
    return *b ? Tristate::yes : Tristate::no;
}

constexpr std::array<std::string_view, 16> known_keys = {
    "path",       "enforce_multipath", "libvirt_uri",    "probe_portals",       "probe_timeout_ms",
    "disk_cache", "disk_io",           "initiator_name", "initiator_name_file", "host_multipath",
    "qemu_iscsi", "cleanup_volume_prefix", "state_dir",  "state_lock_timeout_ms", "connector_ip",
    "connector_host"};

// Host path keys (appended).
constexpr std::array<std::string_view, 13> host_path_keys = {
    "iscsiadm_path",          "multipath_path",   "multipathd_path",           "sysfs_root",
    "dev_root",               "iscsi_node_dir",   "lock_dir",                  "device_wait_timeout_ms",
    "login_timeout_ms",       "multipath_wait_timeout_ms", "command_timeout_ms", "keep_chap_in_node_record",
    "host_iscsi"};

Result<std::string> read_absolute_path(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 4096});
    if (!s) return std::move(s).error();
    if (s->front() != '/') return invalid(where, fmt::format("{} must be an absolute path", quote_for_message(*s)));
    return s;
}

Result<void> parse_host_path_keys(const json::Value &doc, const Where &root, DriverConfig &config) {
    const std::pair<std::string_view, std::string *> paths[] = {
        {"iscsiadm_path", &config.iscsiadm_path}, {"multipath_path", &config.multipath_path},
        {"multipathd_path", &config.multipathd_path}, {"sysfs_root", &config.sysfs_root},
        {"dev_root", &config.dev_root}, {"iscsi_node_dir", &config.iscsi_node_dir}, {"lock_dir", &config.lock_dir}};
    for (const auto &[key, out] : paths) {
        if (const json::Value *v = member(doc, key)) {
            auto s = read_absolute_path(*v, root.key(key));
            if (!s) return std::move(s).error();
            *out = std::move(s).value();
        }
    }
    const std::pair<std::string_view, std::chrono::milliseconds *> times[] = {
        {"device_wait_timeout_ms", &config.device_wait_timeout}, {"login_timeout_ms", &config.login_timeout},
        {"multipath_wait_timeout_ms", &config.multipath_wait_timeout}, {"command_timeout_ms", &config.command_timeout}};
    for (const auto &[key, out] : times) {
        if (const json::Value *v = member(doc, key)) {
            auto n = read_flexible_integer(*v, root.key(key), 10, 3600000);
            if (!n) return std::move(n).error();
            *out = std::chrono::milliseconds(*n);
        }
    }
    if (const json::Value *v = member(doc, "keep_chap_in_node_record")) {
        auto b = read_flexible_bool(*v, root.key("keep_chap_in_node_record"));
        if (!b) return std::move(b).error();
        config.keep_chap_in_node_record = *b;
    }
    if (const json::Value *v = member(doc, "host_iscsi")) {
        auto t = read_tristate(*v, root.key("host_iscsi"));
        if (!t) return std::move(t).error();
        config.host_iscsi = *t;
    }
    return {};
}

// Host capability detection keys (appended).
constexpr std::array<std::string_view, 5> host_facts_keys = {
    "qemu_emulator", "qemu_module_dir", "iscsid_socket", "multipathd_socket", "host_facts_ttl_s"};

Result<void> parse_host_facts_keys(const json::Value &doc, const Where &root, DriverConfig &config) {
    for (const auto &[key, out] : {std::pair<std::string_view, std::string *>{"qemu_emulator", &config.qemu_emulator},
                                   {"qemu_module_dir", &config.qemu_module_dir}}) {
        if (const json::Value *v = member(doc, key)) {
            auto s = read_string(*v, root.key(key), {.max_bytes = 4096});
            if (!s) return std::move(s).error();
            if (s->front() != '/') return invalid(root.key(key), fmt::format("{} must be an absolute path", quote_for_message(*s)));
            *out = std::move(s).value();
        }
    }
    // A socket is a path, or "@name" for the abstract namespace (how iscsid and multipathd listen).
    for (const auto &[key, out] : {std::pair<std::string_view, std::string *>{"iscsid_socket", &config.iscsid_socket},
                                   {"multipathd_socket", &config.multipathd_socket}}) {
        if (const json::Value *v = member(doc, key)) {
            auto s = read_string(*v, root.key(key), {.max_bytes = 107});
            if (!s) return std::move(s).error();
            if (s->front() != '/' && (s->front() != '@' || s->size() < 2)) {
                return invalid(root.key(key), fmt::format("{} must be an absolute path or \"@abstract-name\"", quote_for_message(*s)));
            }
            *out = std::move(s).value();
        }
    }
    if (const json::Value *v = member(doc, "host_facts_ttl_s")) {
        auto n = read_flexible_integer(*v, root.key("host_facts_ttl_s"), 0, 86400);
        if (!n) return std::move(n).error();
        config.host_facts_ttl = std::chrono::seconds(*n);
    }
    return {};
}

// libvirt deadline keys (appended).
constexpr std::array<std::string_view, 3> libvirt_keys = {
    "libvirt_open_timeout_ms", "libvirt_keepalive_interval_s", "libvirt_keepalive_count"};

Result<void> parse_libvirt_keys(const json::Value &doc, const Where &root, DriverConfig &config) {
    if (const json::Value *v = member(doc, "libvirt_open_timeout_ms")) {
        auto n = read_flexible_integer(*v, root.key("libvirt_open_timeout_ms"), 100, 600000);
        if (!n) return std::move(n).error();
        config.libvirt_open_timeout = std::chrono::milliseconds(*n);
    }
    const std::pair<std::string_view, int *> counts[] = {
        {"libvirt_keepalive_interval_s", &config.libvirt_keepalive_interval_s},
        {"libvirt_keepalive_count", &config.libvirt_keepalive_count}};
    for (const auto &[key, out] : counts) {
        if (const json::Value *v = member(doc, key)) {
            auto n = read_flexible_integer(*v, root.key(key), 0, key == "libvirt_keepalive_count" ? 100 : 3600);
            if (!n) return std::move(n).error();
            *out = static_cast<int>(*n);
        }
    }
    return {};
}

Result<DriverConfig> parse(const json::Value &doc) {
    DriverConfig config;
    const Where root{"config", {}};
    if (const json::Value *v = member(doc, "path")) {
        auto s = read_choice(*v, root.key("path"), {"auto", "network", "host"});
        if (!s) return std::move(s).error();
        config.path = *s == "network" ? PathChoice::network : *s == "host" ? PathChoice::host : PathChoice::automatic;
    }
    if (const json::Value *v = member(doc, "enforce_multipath")) {
        auto b = read_flexible_bool(*v, root.key("enforce_multipath"));
        if (!b) return std::move(b).error();
        config.enforce_multipath = *b;
    }
    if (config.enforce_multipath && config.path == PathChoice::network) {
        return invalid(root.key("enforce_multipath"), "cannot be true when path is \"network\" (QEMU's initiator has no multipath)");
    }
    if (const json::Value *v = member(doc, "libvirt_uri")) {
        auto s = read_string(*v, root.key("libvirt_uri"), {.max_bytes = 1024});
        if (!s) return std::move(s).error();
        config.libvirt_uri = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "probe_portals")) {
        auto b = read_flexible_bool(*v, root.key("probe_portals"));
        if (!b) return std::move(b).error();
        config.probe_portals = *b;
    }
    if (const json::Value *v = member(doc, "probe_timeout_ms")) {
        auto n = read_flexible_integer(*v, root.key("probe_timeout_ms"), 50, 600000);
        if (!n) return std::move(n).error();
        config.probe_timeout = std::chrono::milliseconds(*n);
    }
    if (const json::Value *v = member(doc, "disk_cache")) {
        auto s = read_choice(*v, root.key("disk_cache"),
                             {"none", "writethrough", "writeback", "directsync", "unsafe", "default"});
        if (!s) return std::move(s).error();
        config.disk_cache = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "disk_io")) {
        auto s = read_choice(*v, root.key("disk_io"), {"native", "threads", "io_uring", "default"});
        if (!s) return std::move(s).error();
        config.disk_io = std::move(s).value();
    }
    if (config.disk_io == "native" && config.disk_cache != "none" && config.disk_cache != "directsync") {
        return invalid(root.key("disk_io"), "\"native\" needs disk_cache \"none\" or \"directsync\" (QEMU requires O_DIRECT for it)");
    }
    // What the connector reports as "ip" and "host" (Nova: my_block_storage_ip, host); "" = detected.
    for (const auto &[key, field] : {std::pair{"connector_ip", &config.connector_ip}, std::pair{"connector_host", &config.connector_host}}) {
        if (const json::Value *v = member(doc, key)) {
            auto s = read_string(*v, root.key(key), {.max_bytes = 255, .allow_empty = true});
            if (!s) return std::move(s).error();
            *field = std::move(s).value();
        }
    }
    if (const json::Value *v = member(doc, "initiator_name")) {
        auto s = read_string(*v, root.key("initiator_name"), {.max_bytes = 223, .allow_empty = true});
        if (!s) return std::move(s).error();
        config.initiator_name = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "cleanup_volume_prefix")) {
        auto s = read_string(*v, root.key("cleanup_volume_prefix"), {.max_bytes = 255, .allow_empty = true});
        if (!s) return std::move(s).error();
        config.cleanup_volume_prefix = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "state_dir")) {
        auto s = read_absolute_path(*v, root.key("state_dir"));
        if (!s) return std::move(s).error();
        config.state_dir = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "state_lock_timeout_ms")) {
        auto n = read_flexible_integer(*v, root.key("state_lock_timeout_ms"), 10, 3600000);
        if (!n) return std::move(n).error();
        config.state_lock_timeout = std::chrono::milliseconds(*n);
    }
    if (const json::Value *v = member(doc, "initiator_name_file")) {
        auto s = read_string(*v, root.key("initiator_name_file"), {.max_bytes = 4096});
        if (!s) return std::move(s).error();
        config.initiator_name_file = std::move(s).value();
    }
    if (const json::Value *v = member(doc, "host_multipath")) {
        auto t = read_tristate(*v, root.key("host_multipath"));
        if (!t) return std::move(t).error();
        config.host_multipath = *t;
    }
    if (const json::Value *v = member(doc, "qemu_iscsi")) {
        auto t = read_tristate(*v, root.key("qemu_iscsi"));
        if (!t) return std::move(t).error();
        config.qemu_iscsi = *t;
    }
    if (auto r = parse_host_path_keys(doc, root, config); !r) return std::move(r).error();
    if (auto r = parse_host_facts_keys(doc, root, config); !r) return std::move(r).error();
    if (auto r = parse_libvirt_keys(doc, root, config); !r) return std::move(r).error();
    for (const json::Member &m : doc.members()) {
        const std::string &name = m.key;
        if (std::find(known_keys.begin(), known_keys.end(), name) == known_keys.end() &&
            std::find(host_path_keys.begin(), host_path_keys.end(), name) == host_path_keys.end() &&
            std::find(host_facts_keys.begin(), host_facts_keys.end(), name) == host_facts_keys.end() &&
            std::find(libvirt_keys.begin(), libvirt_keys.end(), name) == libvirt_keys.end()) {
            config.unknown_keys.push_back(name);
        }
    }
    return config;
}

}  // namespace

Result<DriverConfig> parse_driver_config(const json::Value &document) {
    auto config = parse(document);
    if (!config) return config_error(std::move(config).error());
    return config;
}

}  // namespace ivd::request
