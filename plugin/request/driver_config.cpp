#include "request/driver_config.hpp"

#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <cstdint>
#include <string_view>

namespace ivd::request {

namespace {

Error config_error(Error e) {
    e.status = Status::config;
    return e;
}

// --- Readers: one per kind of value; each names the key in its error. ---

Result<bool> flag(const json::Value &v, const Where &where) { return read_flexible_bool(v, where); }

template <std::int64_t Min, std::int64_t Max>
Result<std::chrono::milliseconds> millis(const json::Value &v, const Where &where) {
    auto n = read_flexible_integer(v, where, Min, Max);
    if (!n) return std::move(n).error();
    return std::chrono::milliseconds(*n);
}

template <std::int64_t Min, std::int64_t Max>
Result<std::chrono::seconds> seconds(const json::Value &v, const Where &where) {
    auto n = read_flexible_integer(v, where, Min, Max);
    if (!n) return std::move(n).error();
    return std::chrono::seconds(*n);
}

template <int Min, int Max>
Result<int> count(const json::Value &v, const Where &where) {
    auto n = read_flexible_integer(v, where, Min, Max);
    if (!n) return std::move(n).error();
    return static_cast<int>(*n);
}

template <std::size_t MaxBytes, bool AllowEmpty>
Result<std::string> text(const json::Value &v, const Where &where) {
    return read_string(v, where, {.max_bytes = MaxBytes, .allow_empty = AllowEmpty});
}

Result<std::string> absolute_path(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 4096});
    if (!s) return std::move(s).error();
    if (s->front() != '/') return invalid(where, fmt::format("{} must be an absolute path", quote_for_message(*s)));
    return s;
}

// A socket is a path, or "@name" for the abstract namespace (how iscsid and multipathd listen).
Result<std::string> socket_path(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 107});
    if (!s) return std::move(s).error();
    if (s->front() != '/' && (s->front() != '@' || s->size() < 2)) {
        return invalid(where, fmt::format("{} must be an absolute path or \"@abstract-name\"", quote_for_message(*s)));
    }
    return s;
}

template <const auto &Allowed>
Result<std::string> choice(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 32, .allow_empty = true});
    if (!s) return std::move(s).error();
    if (std::find(Allowed.begin(), Allowed.end(), *s) == Allowed.end()) {
        std::string list;
        for (auto a : Allowed) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", a);
        return invalid(where, fmt::format("{} must be one of {}", quote_for_message(*s), list));
    }
    return s;
}

constexpr std::array<std::string_view, 3> path_choices = {"auto", "network", "host"};
constexpr std::array<std::string_view, 6> cache_choices = {"none",       "writethrough", "writeback",
                                                           "directsync", "unsafe",       "default"};
constexpr std::array<std::string_view, 4> io_choices = {"native", "threads", "io_uring", "default"};

Result<PathChoice> path_choice(const json::Value &v, const Where &where) {
    auto s = choice<path_choices>(v, where);
    if (!s) return std::move(s).error();
    return *s == "network" ? PathChoice::network : *s == "host" ? PathChoice::host : PathChoice::automatic;
}

Result<Tristate> tristate(const json::Value &v, const Where &where) {
    if (v.is_string() && v.as_string() == "auto") return Tristate::automatic;
    auto b = read_flexible_bool(v, where);
    if (!b) return invalid(where, "must be \"auto\", true or false");
    return *b ? Tristate::yes : Tristate::no;
}

// --- iscsi_ifaces: "NAME" or "NAME:NETDEV", comma-separated. ---

bool iface_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

// An offload iface as iscsiadm names it: TRANSPORT.MAC ("bnx2i.00:0e:1e:04:93:92"); its colons belong to the name.
bool offload_iface_name(std::string_view s) {
    const auto dot = s.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || s.size() - dot - 1 != 17) return false;
    if (!std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(dot), iface_char)) return false;
    for (std::size_t i = 0; i < 17; ++i) {
        const char c = s[dot + 1 + i];
        if (i % 3 == 2 ? c != ':' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

// A name iscsiadm keeps as a file name (ifaces/NAME, nodes/.../NAME): letters, digits, '_', '-', '.', not
// starting with '-' (an option to iscsiadm) or '.' (no "." or ".."), at most 64 bytes (ISCSI_MAX_IFACE_LEN 65).
std::optional<std::string> bad_name(std::string_view s, std::size_t max_bytes, std::string_view what) {
    if (s.empty()) return fmt::format("an empty {}", what);
    if (s.size() > max_bytes) return fmt::format("{} \"{}\" is longer than {} bytes", what, s, max_bytes);
    if (s.front() == '-' || s.front() == '.') return fmt::format("{} \"{}\" starts with '{}'", what, s, s.front());
    if (!std::all_of(s.begin(), s.end(), iface_char)) {
        return fmt::format("{} \"{}\" has a character other than letters, digits, '_', '-' and '.'", what, s);
    }
    return std::nullopt;
}

Result<IscsiIface> iscsi_iface(std::string_view entry, const Where &where) {
    IscsiIface iface;
    const auto colon = entry.find(':');
    if (offload_iface_name(entry)) {
        iface.name = std::string(entry);
        return iface;
    }
    iface.name = std::string(entry.substr(0, colon));
    if (colon != std::string_view::npos) iface.netdev = std::string(entry.substr(colon + 1));
    if (auto why = bad_name(iface.name, 64, "iface name")) return invalid(where, *why);
    if (colon != std::string_view::npos) {
        // A Linux interface name: at most 15 bytes (IFNAMSIZ), no '/', ':' or white space.
        if (auto why = bad_name(iface.netdev, 15, "network interface")) {
            return invalid(where, fmt::format("{} (in \"{}\": NAME:NETDEV)", *why, entry));
        }
        if (iface.name == default_iface || iface.name == "iser") {
            return invalid(where, fmt::format("\"{}\" is open-iscsi's own iface and binds no network interface: give "
                                              "another name for \"{}\"", iface.name, entry));
        }
    }
    return iface;
}

Result<std::vector<IscsiIface>> iscsi_iface_list(const json::Value &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = 4096});
    if (!s) return std::move(s).error();
    std::vector<IscsiIface> out;
    std::string_view rest = *s;
    while (true) {
        const auto comma = rest.find(',');
        std::string_view entry = rest.substr(0, comma);
        while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
        while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
        auto iface = iscsi_iface(entry, where);
        if (!iface) return std::move(iface).error();
        if (std::any_of(out.begin(), out.end(), [&](const IscsiIface &i) { return i.name == iface->name; })) {
            return invalid(where, fmt::format("iface \"{}\" is listed twice", iface->name));
        }
        out.push_back(std::move(*iface));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return out;
}

// --- Checks across keys, run right after the row that completes them (so errors come in key order). ---

Result<void> multipath_needs_host_path(DriverConfig &c, const Where &where) {
    if (c.enforce_multipath && c.path == PathChoice::network) {
        return invalid(where, "cannot be true when path is \"network\" (QEMU's initiator has no multipath)");
    }
    return {};
}

Result<void> native_io_needs_direct_cache(DriverConfig &c, const Where &where) {
    if (c.disk_io == "native" && c.disk_cache != "none" && c.disk_cache != "directsync") {
        return invalid(where, "\"native\" needs disk_cache \"none\" or \"directsync\" (QEMU requires O_DIRECT for it)");
    }
    return {};
}

// scrub_chap_from_node_record, or the old keep_chap_in_node_record with its meaning inverted; both given and
// disagreeing is an error (which one wins would be a guess).
Result<void> resolve_chap_record_policy(DriverConfig &c, const Where &where) {
    if (c.scrub_chap_key && c.keep_chap_key && *c.scrub_chap_key == *c.keep_chap_key) {
        return invalid(where, "contradicts scrub_chap_from_node_record (keep_chap_in_node_record is the old name of "
                              "its opposite: give only scrub_chap_from_node_record)");
    }
    if (c.scrub_chap_key) c.scrub_chap_from_node_record = *c.scrub_chap_key;
    else if (c.keep_chap_key) c.scrub_chap_from_node_record = !*c.keep_chap_key;
    return {};
}

// --- The table: one row per key (key, reader, field of DriverConfig). ---

using Apply = Result<void> (*)(const json::Value &, const Where &, DriverConfig &);
using Check = Result<void> (*)(DriverConfig &, const Where &);  // may settle fields from keys read before

template <auto Reader, auto Field>
Result<void> into(const json::Value &v, const Where &where, DriverConfig &config) {
    auto value = Reader(v, where);
    if (!value) return std::move(value).error();
    config.*Field = std::move(value).value();
    return {};
}

struct Row {
    std::string_view key;
    Apply read;
    Check then = nullptr;  // a check across keys, run after this row (whether or not the key was given)
};

using C = DriverConfig;
constexpr auto any_ms = millis<10, 3600000>;

constexpr Row rows[] = {
    {"path", into<path_choice, &C::path>},
    {"enforce_multipath", into<flag, &C::enforce_multipath>, multipath_needs_host_path},
    {"libvirt_uri", into<text<1024, false>, &C::libvirt_uri>},
    {"probe_portals", into<flag, &C::probe_portals>},
    {"probe_timeout_ms", into<millis<50, 600000>, &C::probe_timeout>},
    {"disk_cache", into<choice<cache_choices>, &C::disk_cache>},
    {"disk_io", into<choice<io_choices>, &C::disk_io>, native_io_needs_direct_cache},
    {"initiator_name", into<text<223, true>, &C::initiator_name>},
    {"cleanup_volume_prefix", into<text<255, true>, &C::cleanup_volume_prefix>},
    {"libvirt_ephemeral_secrets", into<flag, &C::libvirt_ephemeral_secrets>},
    {"connector_ip", into<text<255, true>, &C::connector_ip>},
    {"connector_host", into<text<255, true>, &C::connector_host>},
    {"state_dir", into<absolute_path, &C::state_dir>},
    {"state_lock_timeout_ms", into<any_ms, &C::state_lock_timeout>},
    {"initiator_name_file", into<text<4096, false>, &C::initiator_name_file>},
    {"host_multipath", into<tristate, &C::host_multipath>},
    {"qemu_iscsi", into<tristate, &C::qemu_iscsi>},
    // Host path.
    {"iscsiadm_path", into<absolute_path, &C::iscsiadm_path>},
    {"multipath_path", into<absolute_path, &C::multipath_path>},
    {"multipathd_path", into<absolute_path, &C::multipathd_path>},
    {"dmsetup_path", into<absolute_path, &C::dmsetup_path>},
    {"sysfs_root", into<absolute_path, &C::sysfs_root>},
    {"dev_root", into<absolute_path, &C::dev_root>},
    {"udev_data_dir", into<absolute_path, &C::udev_data_dir>},
    {"iscsi_node_dir", into<absolute_path, &C::iscsi_node_dir>},
    {"multipath_wwids_file", into<absolute_path, &C::multipath_wwids_file>},
    {"lock_dir", into<absolute_path, &C::lock_dir>},
    {"device_wait_timeout_ms", into<any_ms, &C::device_wait_timeout>},
    {"login_timeout_ms", into<any_ms, &C::login_timeout>},
    {"multipath_wait_timeout_ms", into<any_ms, &C::multipath_wait_timeout>},
    {"command_timeout_ms", into<any_ms, &C::command_timeout>},
    {"map_ready_timeout_ms", into<any_ms, &C::map_ready_timeout>},
    {"extend_timeout_ms", into<any_ms, &C::extend_timeout>},
    {"path_removal_timeout_ms", into<any_ms, &C::path_removal_timeout>},
    {"map_removal_timeout_ms", into<any_ms, &C::map_removal_timeout>},
    {"scrub_chap_from_node_record", into<flag, &C::scrub_chap_key>},
    {"keep_chap_in_node_record", into<flag, &C::keep_chap_key>, resolve_chap_record_policy},  // the old name
    {"iscsi_ifaces", into<iscsi_iface_list, &C::iscsi_ifaces>},
    {"host_iscsi", into<tristate, &C::host_iscsi>},
    // Host capability detection.
    {"qemu_emulator", into<absolute_path, &C::qemu_emulator>},
    {"qemu_module_dir", into<absolute_path, &C::qemu_module_dir>},
    {"iscsid_socket", into<socket_path, &C::iscsid_socket>},
    {"multipathd_socket", into<socket_path, &C::multipathd_socket>},
    {"host_facts_ttl_s", into<seconds<0, 86400>, &C::host_facts_ttl>},
    // libvirt deadlines.
    {"libvirt_open_timeout_ms", into<millis<100, 600000>, &C::libvirt_open_timeout>},
    {"libvirt_keepalive_interval_s", into<count<0, 3600>, &C::libvirt_keepalive_interval_s>},
    {"libvirt_keepalive_count", into<count<0, 100>, &C::libvirt_keepalive_count>},
};

bool known(std::string_view key) {
    return std::any_of(std::begin(rows), std::end(rows), [&](const Row &r) { return r.key == key; });
}

Result<DriverConfig> parse(const json::Value &doc) {
    DriverConfig config;
    const Where root{"config", {}};
    for (const Row &row : rows) {
        const Where where = root.key(row.key);
        if (const json::Value *v = member(doc, row.key)) {
            if (auto r = row.read(*v, where, config); !r) return std::move(r).error();
        }
        if (row.then != nullptr) {
            if (auto r = row.then(config, where); !r) return std::move(r).error();
        }
    }
    for (const json::Member &m : doc.members()) {
        if (!known(m.key)) config.unknown_keys.push_back(m.key);
    }
    return config;
}

}  // namespace

bool valid_iscsi_iface_name(std::string_view name) {
    return offload_iface_name(name) || !bad_name(name, 64, "iface name");
}

HostFactsConfig DriverConfig::host_facts() const {
    HostFactsConfig part;
    static_cast<LibvirtConfig &>(part) = *this;
    static_cast<HostToolsConfig &>(part) = *this;
    static_cast<HostFactsOptions &>(part) = *this;
    return part;
}

NetDiskConfig DriverConfig::net_disk() const {
    NetDiskConfig part;
    static_cast<GuestDiskConfig &>(part) = *this;
    static_cast<ProbeConfig &>(part) = *this;
    static_cast<LibvirtConfig &>(part) = *this;
    static_cast<NetDiskOptions &>(part) = *this;
    part.initiator_name = initiator_name;
    part.initiator_name_file = initiator_name_file;
    return part;
}

HostPathConfig DriverConfig::host_path() const {
    HostPathConfig part;
    static_cast<GuestDiskConfig &>(part) = *this;
    static_cast<HostToolsConfig &>(part) = *this;
    static_cast<HostPathOptions &>(part) = *this;
    part.probe_timeout = probe_timeout;
    part.enforce_multipath = enforce_multipath;
    part.initiator_name_file = initiator_name_file;
    part.state_dir = state_dir;
    part.state_lock_timeout = state_lock_timeout;
    return part;
}

Result<DriverConfig> parse_driver_config(const json::Value &document) {
    auto config = parse(document);
    if (!config) return config_error(std::move(config).error());
    return config;
}

std::vector<std::string_view> driver_config_keys() {
    std::vector<std::string_view> keys;
    for (const Row &row : rows) keys.push_back(row.key);
    return keys;
}

}  // namespace ivd::request
