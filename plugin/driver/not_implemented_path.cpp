// Placeholders for the attach paths until they land: an honest "not implemented", never a faked success.
#include "driver/attach_path.hpp"
#include "core/log.hpp"
#include "request/driver_config.hpp"

#include <fmt/format.h>

#include <memory>
#include <string>

namespace ivd {

namespace {

class NotImplementedPath final : public AttachPathImpl {
public:
    explicit NotImplementedPath(std::string name) : name_(std::move(name)) {}
    Result<Json::Value> connect(const ConnectContext &) override { return error(); }
    Result<void> disconnect(const request::VolumeRequest &, const Json::Value *, std::uint32_t) override {
        return error();
    }

private:
    Error error() const {
        return make_error(Status::not_implemented,
                          fmt::format("the {} attach path is not implemented in this build", name_));
    }
    std::string name_;
};

}  // namespace

std::unique_ptr<AttachPathImpl> make_network_path(const request::DriverConfig &, const Logger &) {
    return std::make_unique<NotImplementedPath>("network (QEMU initiator)");
}

std::unique_ptr<AttachPathImpl> make_host_path(const request::DriverConfig &, const Logger &) {
    return std::make_unique<NotImplementedPath>("host (multipath)");
}

}  // namespace ivd
