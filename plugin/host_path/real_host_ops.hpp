// The real HostOps: open-iscsi's iscsiadm, multipath-tools and sysfs, all under configurable paths and roots.
#pragma once

#include "core/log.hpp"
#include "host_path/host_ops.hpp"
#include "request/driver_config.hpp"

#include <memory>

namespace ivd::host_path {

std::unique_ptr<HostOps> make_real_host_ops(const request::HostPathConfig &config, const Logger &log);

// Kernel sysfs wwid ("naa.6001...") to the scsi_id/multipath form ("36001...").
std::string wwid_from_sysfs(std::string text);

}  // namespace ivd::host_path
