#include "driver/path_factories.hpp"
#include "host_path/host_path.hpp"
#include "host_path/real_host_ops.hpp"

namespace ivd {

std::unique_ptr<AttachPathImpl> make_host_path(const request::HostPathConfig &config, const Logger &log) {
    return std::make_unique<host_path::HostPath>(
        config, log, host_path::make_real_host_ops(config, log), host_path::StorageQueries{},
        host_path::make_file_journal(config.state_dir, config.state_lock_timeout));
}

}  // namespace ivd
