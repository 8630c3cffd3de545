// An honest "not implemented" attach path, for a build whose path is not there yet; never a faked success.
#pragma once

#include "driver/attach_path.hpp"

#include <string>

namespace ivd {

class NotImplementedPath final : public AttachPathImpl {
public:
    explicit NotImplementedPath(std::string name) : name_(std::move(name)) {}
    Result<request::DeviceInfo> connect(const ConnectContext &) override { return error(); }
    Result<void> disconnect(const request::VolumeRequest &, const request::DeviceInfo *, DisconnectOptions) override {
        return error();
    }

private:
    Error error() const {
        return make_error(Status::not_implemented, "the " + name_ + " attach path is not implemented in this build");
    }
    std::string name_;
};

}  // namespace ivd
