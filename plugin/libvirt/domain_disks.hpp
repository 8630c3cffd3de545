// Which libvirt secrets and host block devices the disks of libvirt's domains reference, live and persistent
// config: what the driver's cleanup must never remove.
#pragma once

#include "core/error.hpp"
#include "libvirt/connection.hpp"

#include <string>
#include <vector>

namespace ivd::libvirt {

struct SecretReference {
    std::string domain;      // domain name
    std::string view;        // "live" or "config"
    std::string target_dev;  // the disk's <target dev>, "" when absent
    std::string usage;       // <secret usage=...>, "" when the disk names the secret by UUID only
    std::string uuid;        // <secret uuid=...>, "" when by usage only
};

// Every <disk> <auth><secret .../></auth> in one domain XML document, in either placement (inside <source>,
// libvirt >= 3.9, or directly under <disk>). Pure; `domain` and `view` are copied into each reference.
Result<std::vector<SecretReference>> secret_references_in_domain_xml(const std::string &xml, const std::string &domain,
                                                                     const std::string &view);

// References of every domain on the connection: the live XML of running domains and the persistent config of
// defined ones (a stopped persistent domain still needs its secrets to start). A domain that vanishes during
// the listing is skipped; any other failure is an error, because then "unreferenced" cannot be proven.
Result<std::vector<SecretReference>> list_disk_secret_references(Connection &connection);

// The host block devices (<disk type='block'><source dev=...>) the domains use, live XML of running domains and
// persistent config of defined ones, as written there: what the host path's cleanup must keep. Failures as above.
Result<std::vector<std::string>> block_sources_in_domain_xml(const std::string &xml, const std::string &domain,
                                                             const std::string &view);
Result<std::vector<std::string>> list_disk_block_sources(Connection &connection);

}  // namespace ivd::libvirt
