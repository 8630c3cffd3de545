#include "decide/decide.hpp"

#include <fmt/format.h>

namespace ivd {

const char *attach_path_name(AttachPath path) { return path == AttachPath::network ? "network" : "host"; }

namespace {

Error cannot(std::string message) { return make_error(Status::unsupported, std::move(message)); }

std::string or_unknown(const std::string &reason) { return reason.empty() ? "not detected" : reason; }

constexpr const char *qemu_fix = "install QEMU's iSCSI block module (Debian: qemu-block-extra)";
constexpr const char *host_fix = "install open-iscsi and start iscsid";
constexpr const char *multipath_fix = "install multipath-tools and start multipathd";

}  // namespace

Result<PathDecision> decide_path(const request::DecideConfig &config, const request::Connector &connector,
                                 const HostCapabilities &host) {
    using request::PathChoice;
    if (config.enforce_multipath && config.path == PathChoice::network) {
        // parse_driver_config refuses this; kept here so the decision never quietly picks the host path.
        return make_error(Status::config, "enforce_multipath cannot be true when path is \"network\" (QEMU's "
                                          "initiator has no multipath)", "config", "enforce_multipath");
    }
    if (connector.enforce_multipath && config.path == PathChoice::network) {
        return make_error(Status::unsupported, "connector enforce_multipath: the driver's path is \"network\" (QEMU's "
                                               "initiator has no multipath)", "connector", "enforce_multipath");
    }
    if (config.enforce_multipath || connector.enforce_multipath) {
        // The operator (or the host, through the connector) demands multipath: anything less is an error, never a silent single path.
        if (!connector.multipath) {
            return make_error(Status::invalid_argument,
                              "connector multipath: enforce_multipath is set but the connector does not ask for multipath",
                              "connector", "multipath");
        }
        if (!host.host_iscsi) {
            return cannot(fmt::format("enforce_multipath is set but this host cannot log in to iSCSI targets ({}); {}",
                                      or_unknown(host.host_iscsi_reason), host_fix));
        }
        if (!host.multipath) {
            return cannot(fmt::format("enforce_multipath is set but multipath is not usable on this host ({}); {}",
                                      or_unknown(host.multipath_reason), multipath_fix));
        }
        return PathDecision{AttachPath::host, true, "enforce_multipath: host path with multipath", true};
    }

    switch (config.path) {
    case PathChoice::network:
        if (!host.qemu_iscsi && !host.libvirt_problem.empty()) {
            return make_error(host.libvirt_status, fmt::format("path is \"network\" but libvirt is unreachable, so "
                                                               "its QEMU cannot be checked: {}", host.libvirt_problem));
        }
        if (!host.qemu_iscsi) {
            return cannot(fmt::format("path is \"network\" but QEMU cannot open iSCSI volumes ({}); {}",
                                      or_unknown(host.qemu_iscsi_reason), qemu_fix));
        }
        return PathDecision{AttachPath::network, false, "config path=network"};
    case PathChoice::host: {
        if (!host.host_iscsi) {
            return cannot(fmt::format("path is \"host\" but this host cannot log in to iSCSI targets ({}); {}",
                                      or_unknown(host.host_iscsi_reason), host_fix));
        }
        const bool mp = connector.multipath && host.multipath;
        return PathDecision{AttachPath::host, mp,
                            mp ? "config path=host, multipath" : "config path=host, single path"};
    }
    case PathChoice::automatic:
        break;
    }

    if (connector.multipath && host.multipath && host.host_iscsi) {
        return PathDecision{AttachPath::host, true, "connector asks for multipath and the host can multipath"};
    }
    if (host.qemu_iscsi) {
        std::string reason = "QEMU's built-in initiator";
        if (connector.multipath) {
            reason += fmt::format(" (connector asks for multipath, but the host cannot: {})",
                                  !host.host_iscsi ? or_unknown(host.host_iscsi_reason) : or_unknown(host.multipath_reason));
        }
        return PathDecision{AttachPath::network, false, std::move(reason)};
    }
    if (host.host_iscsi) {
        return PathDecision{AttachPath::host, false,
                            fmt::format("QEMU cannot open iSCSI volumes ({}); host path, single path",
                                        or_unknown(host.qemu_iscsi_reason))};
    }
    if (!host.libvirt_problem.empty()) {
        return make_error(host.libvirt_status,
                          fmt::format("no attach path is usable: libvirt is unreachable ({}) and the host cannot log in "
                                      "itself ({})", host.libvirt_problem, or_unknown(host.host_iscsi_reason)));
    }
    return cannot(fmt::format("no attach path is usable: QEMU cannot open iSCSI volumes ({}) and the host cannot "
                              "log in itself ({}); {}, or {}",
                              or_unknown(host.qemu_iscsi_reason), or_unknown(host.host_iscsi_reason), qemu_fix, host_fix));
}

}  // namespace ivd
