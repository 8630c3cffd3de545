#include "driver/not_implemented_path.hpp"
#include "driver/path_factories.hpp"

namespace ivd {

std::unique_ptr<AttachPathImpl> make_network_path(const request::DriverConfig &, const Logger &) {
    return std::make_unique<NotImplementedPath>("network (QEMU initiator)");
}

}  // namespace ivd
