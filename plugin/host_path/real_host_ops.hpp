// The real HostOps: open-iscsi's iscsiadm, multipath-tools and sysfs, all under configurable paths and roots.
#pragma once

#include "core/log.hpp"
#include "host_path/host_ops.hpp"
#include "request/driver_config.hpp"

#include <memory>

namespace ivd::host_path {

std::unique_ptr<HostOps> make_real_host_ops(const request::DriverConfig &config, const Logger &log);

// Writes (or, with password == nullptr, removes) node.session.auth.password in an open-iscsi node record file,
// atomically and with mode 0600. This is how CHAP reaches iscsiadm without ever being on a command line.
Result<void> set_record_password(const std::string &record_file, const SecretString *password);

// The record file of (portal, IQN) under an open-iscsi node directory; empty when there is none.
std::string find_node_record(const std::string &node_dir, const request::Portal &portal, const std::string &iqn);

// Kernel sysfs wwid ("naa.6001...") to the scsi_id/multipath form ("36001...").
std::string wwid_from_sysfs(std::string text);

}  // namespace ivd::host_path
