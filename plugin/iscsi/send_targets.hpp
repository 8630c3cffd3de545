// SendTargets discovery with libiscsi, under a hard deadline (libiscsi has none by default).
#pragma once

#include "core/error.hpp"
#include "request/portal.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace ivd::iscsi {

struct DiscoveredTarget {
    std::string iqn;
    std::vector<request::Portal> portals;  // as the target reports them (",tpgt" removed)
    std::vector<int> tpgts;                // each portal's target portal group tag; -1 when it gave none
};

// SendTargets discovery on one portal, with discovery CHAP when given.
Result<std::vector<DiscoveredTarget>> send_targets(const request::Portal &portal, const std::string &initiator,
                                                   const request::ChapCredentials *discovery_chap,
                                                   std::chrono::milliseconds timeout);

}  // namespace ivd::iscsi
