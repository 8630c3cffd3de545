// iscsi_ifaces on the host: each configured open-iscsi iface is there before any login through it, made from its
// netdev when missing (as an operator would: iscsiadm -m iface), and refused when it is bound elsewhere.
#include "host_path/host_tools.hpp"

#include <fmt/format.h>

#include <string_view>

namespace ivd::host_path {

namespace {

constexpr std::string_view key = "iscsi_ifaces";

Error config_error(std::string message) {
    return make_error(Status::config, fmt::format("{}: {}", key, message), "config", std::string(key));
}

// The value of `name` in iscsiadm's printout ("iface.net_ifacename = eth1"); "" for "<empty>" or no such line.
std::string setting(std::string_view text, std::string_view name) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.rfind(name, 0) != 0 || line.substr(name.size()).rfind(" = ", 0) != 0) continue;
        std::string_view value = line.substr(name.size() + 3);
        while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.remove_suffix(1);
        return value == "<empty>" ? std::string() : std::string(value);
    }
    return {};
}

Result<void> check_binding(const request::IscsiIface &iface, const std::string &shown) {
    if (iface.netdev.empty()) return {};
    const std::string bound = setting(shown, "iface.net_ifacename");
    if (bound == iface.netdev) return {};
    return config_error(fmt::format("iface \"{}\" exists bound to {} but the config binds it to \"{}\"; change the "
                                    "iface (iscsiadm -m iface -I {} -o update) or the config",
                                    iface.name, bound.empty() ? "no network interface" : "\"" + bound + "\"",
                                    iface.netdev, iface.name));
}

Result<void> create(const HostTools &tools, const request::IscsiIface &iface) {
    if (auto r = tools.iscsiadm({"-m", "iface", "-I", iface.name, "-o", "new"}); !r) {
        // Another connect may have created it a moment ago: what counts is that it is there now.
        auto shown = tools.show_iface(iface.name);
        if (!shown) return config_error(fmt::format("creating iface \"{}\" failed: {}", iface.name, r.error().message));
        return check_binding(iface, *shown);
    }
    auto bound = tools.iscsiadm({"-m", "iface", "-I", iface.name, "-o", "update", "-n", "iface.net_ifacename", "-v",
                                 iface.netdev});
    if (!bound) {
        // Not left half made: an iface without its binding would send the sessions out of any NIC.
        (void)tools.iscsiadm({"-m", "iface", "-I", iface.name, "-o", "delete"});
        return config_error(fmt::format("binding iface \"{}\" to \"{}\" failed: {}", iface.name, iface.netdev,
                                        bound.error().message));
    }
    return {};
}

}  // namespace

Result<void> ensure_iscsi_iface(const HostTools &tools, const request::IscsiIface &iface) {
    if (iface.name == request::default_iface) return {};  // iscsiadm's own: nothing to look at (argv as before)
    auto shown = tools.show_iface(iface.name);
    if (shown) return check_binding(iface, *shown);
    if (shown.error().status == Status::timeout) return std::move(shown).error();
    if (iface.netdev.empty()) {
        return config_error(fmt::format("iface \"{}\" does not exist and no network interface is given to create it "
                                        "(\"{}:NETDEV\"): {}", iface.name, iface.name, shown.error().message));
    }
    return create(tools, iface);
}

}  // namespace ivd::host_path
