// The seam between the driver (parsing, decision, locking) and the two attach paths.
#pragma once

#include "core/error.hpp"
#include "decide/decide.hpp"
#include "host_facts/host_facts.hpp"
#include "request/volume_request.hpp"

#include <json/value.h>

#include <cstdint>

namespace ivd {

struct ConnectContext {
    const request::VolumeRequest &volume;
    const request::Connector &connector;
    const request::DiskTarget &disk;
    const PathDecision &decision;
    const HostFacts &facts;  // what the host and its libvirt can do (XML features, initiator)
};

class AttachPathImpl {
public:
    virtual ~AttachPathImpl() = default;
    // Returns device_info. On failure, undoes whatever it did.
    virtual Result<Json::Value> connect(const ConnectContext &context) = 0;
    // device_info may be null (the host lost it); flags are VD_DISCONNECT_* bits.
    virtual Result<void> disconnect(const request::VolumeRequest &volume, const Json::Value *device_info,
                                    std::uint32_t flags) = 0;
};

}  // namespace ivd
