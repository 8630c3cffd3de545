// LU identity from VPD 0x83 designators: the scsi_id WWID rules, no target needed.
#include "iscsi/lu_identity.hpp"

#include <gtest/gtest.h>

namespace ivd::iscsi {
namespace {

std::string bytes(std::initializer_list<unsigned> values) {
    std::string out;
    for (const unsigned v : values) out += static_cast<char>(v);
    return out;
}

TEST(LuIdentity, NaaOfTgtdGivesTheWwidLinuxShows) {
    // tgtd's NAA 6 designator for the LUN the lab's VM saw as 360000000000000000e00000000290007.
    const auto naa = bytes({0x60, 0, 0, 0, 0, 0, 0, 0, 0x0e, 0, 0, 0, 0, 0x29, 0, 0x07});
    const auto id = lu_identity_from({{1, 0, 2, "IET     00290007"}, {3, 0, 1, naa}});
    EXPECT_EQ(id.wwid, "360000000000000000e00000000290007");
    ASSERT_EQ(id.designators.size(), 2u);
    EXPECT_EQ(id.designators[0], "naa:60000000000000000e00000000290007");
}

TEST(LuIdentity, PrefersNaaRegisteredExtendedOverOtherNaaFormats) {
    const auto naa5 = bytes({0x50, 1, 2, 3, 4, 5, 6, 7});
    const auto naa6 = bytes({0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    EXPECT_EQ(lu_identity_from({{3, 0, 1, naa5}, {3, 0, 1, naa6}}).wwid, "3600102030405060708090a0b0c0d0e0f");
}

TEST(LuIdentity, FallsBackInScsiIdOrder) {
    const auto eui = bytes({1, 2, 3, 4, 5, 6, 7, 8});
    EXPECT_EQ(lu_identity_from({{1, 0, 2, "VENDOR  X"}, {2, 0, 1, eui}}).wwid, "20102030405060708");
    EXPECT_EQ(lu_identity_from({{8, 0, 3, "iqn.x,t,0x1"}, {1, 0, 2, "VENDOR  disk one  "}}).wwid,
              "1VENDOR_disk_one");
    EXPECT_EQ(lu_identity_from({{8, 0, 3, std::string("iqn.x\0\0", 7)}}).wwid, "8iqn.x");
    EXPECT_EQ(lu_identity_from({}).wwid, "");
}

TEST(LuIdentity, IgnoresTargetPortDesignators) {
    // Relative target port ids differ between the paths of one LU; they are not its identity.
    const auto naa = bytes({0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    const auto a = lu_identity_from({{3, 0, 1, naa}, {4, 1, 1, bytes({0, 0, 0, 1})}});
    const auto b = lu_identity_from({{4, 1, 1, bytes({0, 0, 0, 2})}, {3, 0, 1, naa}});
    EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace ivd::iscsi
