#include "driver/not_implemented_path.hpp"
#include "driver/path_factories.hpp"

namespace ivd {

std::unique_ptr<AttachPathImpl> make_host_path(const request::DriverConfig &, const Logger &) {
    return std::make_unique<NotImplementedPath>("host (multipath)");
}

}  // namespace ivd
