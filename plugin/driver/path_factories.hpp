// Each attach path's room provides its factory; the driver only knows this signature.
#pragma once

#include "core/log.hpp"
#include "driver/attach_path.hpp"
#include "request/driver_config.hpp"

#include <memory>

namespace ivd {

std::unique_ptr<AttachPathImpl> make_network_path(const request::NetDiskConfig &config, const Logger &log);
std::unique_ptr<AttachPathImpl> make_host_path(const request::HostPathConfig &config, const Logger &log);

}  // namespace ivd
