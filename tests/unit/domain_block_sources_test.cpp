// Which host block devices a domain's XML uses (cleanup keeps the host attachments behind them): pure parsing.
#include "libvirt/domain_disks.hpp"

#include <gtest/gtest.h>

namespace {

TEST(DomainBlockSources, OnlyBlockDisksWithASourceDevice) {
    const std::string xml = R"(<domain type='qemu'><name>d</name><devices>
      <disk type='block' device='disk'><source dev='/dev/dm-3'/><target dev='sdb' bus='scsi'/></disk>
      <disk type='block' device='lun'><source dev='/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x-lun-1'/></disk>
      <disk type='network' device='disk'><source protocol='iscsi' name='iqn.x/1'/></disk>
      <disk type='file' device='disk'><source file='/var/lib/a.img'/></disk>
      <disk type='block' device='cdrom'><target dev='hdc'/></disk>
    </devices></domain>)";
    auto found = ivd::libvirt::block_sources_in_domain_xml(xml, "d", "live");
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(*found, (std::vector<std::string>{"/dev/dm-3", "/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x-lun-1"}));
}

TEST(DomainBlockSources, XmlThatDoesNotParseIsAnErrorNamingTheDomain) {
    auto found = ivd::libvirt::block_sources_in_domain_xml("<domain><devices>", "broken", "config");
    ASSERT_FALSE(found.ok());
    EXPECT_NE(found.error().message.find("config XML of domain broken"), std::string::npos) << found.error().message;
}

}  // namespace
