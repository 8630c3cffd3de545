// LU identity from the designators of VPD page 0x83, pure (no libiscsi) so it can be table-tested.
#pragma once

#include "iscsi/iscsi_probe.hpp"

#include <string>
#include <vector>

namespace ivd::iscsi {

// One designation descriptor, as SPC-4 7.8.6 lays it out.
struct Designator {
    int type = 0;         // designator type: 1 T10 vendor id, 2 EUI-64, 3 NAA, 8 SCSI name string, ...
    int association = 0;  // 0 logical unit, 1 target port, 2 target device
    int code_set = 1;     // 1 binary, 2 ASCII, 3 UTF-8
    std::string bytes;    // the designator itself
};

// `designators` keeps only those associated with the logical unit: target port designators (relative port id,
// port group) differ between the paths of one LU, so they would make paths of the same LU look different.
// `wwid` follows udev's scsi_id: NAA (6 before 5 before 2 before 3) as "3"+hex, else EUI-64 as "2"+hex, else
// T10 vendor id as "1"+text, else SCSI name string as "8"+text.
LuIdentity lu_identity_from(const std::vector<Designator> &designators);

}  // namespace ivd::iscsi
