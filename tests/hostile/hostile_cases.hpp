// The hostile input table for the ABI test: what each case sends, and whether it must be accepted (with the
// disk_xml it must produce) or rejected (with the error's code, argument and field).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace ivd::hostile {

// libvirt's test driver has no secrets: CHAP cases that pass validation fail at the secret step (backend_error).
inline constexpr const char *config = R"({"qemu_iscsi":"yes","probe_portals":"false","libvirt_uri":"test:///default"})";
inline constexpr const char *iqn = "iqn.2010-10.org.openstack:vol-1";
inline constexpr const char *initiator = "iqn.1993-08.org.debian:01:hostile";

// The arguments of a call that passes (defaults of every case).
extern const std::string good_ci;
extern const std::string good_connector;
extern const std::string good_disk;

// What an accepted connect must show in disk_xml (values the test knows independently of the driver's parser).
struct Accepted {
    std::string host{};
    unsigned port = 3260;
    std::string iqn = hostile::iqn;
    long lun = 1;
    std::string serial = "vol-1";
    std::string dev = "sdb";
    std::string bus = "scsi";
    std::map<std::string, std::string> iotune{};
    bool read_only = false;
};

struct Rejected {
    std::string code;      // last_error "code"
    std::string argument;  // last_error "argument"
    std::string field;     // last_error "field"
};

enum class Op { connect, disconnect };

struct Case {
    std::string name;
    Op op = Op::connect;
    std::optional<std::string> connection_info = good_ci;  // nullopt: NULL
    std::optional<std::string> second = good_connector;     // connector or device_info
    std::optional<std::string> disk_info = good_disk;
    std::uint32_t flags = 0;
    std::optional<Accepted> accepted;
    std::optional<Rejected> rejected;
};

// Every case of the table, in a stable order (test names come from Case::name).
std::vector<Case> cases();

// gtest prints a failing parameter with this instead of its bytes.
void PrintTo(const Case &c, std::ostream *os);

}  // namespace ivd::hostile
