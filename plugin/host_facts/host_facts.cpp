#include "host_facts/host_facts.hpp"

#include "request/iscsi_name.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ivd {

namespace {

// True when something listens on the abstract unix socket `name` (how iscsid and multipathd are reached).
bool abstract_socket_listening(std::string_view name) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t n = std::min(name.size(), sizeof(addr.sun_path) - 1);
    std::memcpy(addr.sun_path + 1, name.data(), n);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), len) == 0;
    ::close(fd);
    return ok;
}

std::string find_executable(std::initializer_list<const char *> candidates) {
    for (const char *path : candidates) {
        if (::access(path, X_OK) == 0) return path;
    }
    return {};
}

std::string first_ip_address() {
    ifaddrs *list = nullptr;
    if (::getifaddrs(&list) != 0) return {};
    std::string found;
    for (ifaddrs *it = list; it != nullptr && found.empty(); it = it->ifa_next) {
        if (it->ifa_addr == nullptr || (it->ifa_flags & IFF_LOOPBACK) != 0 || (it->ifa_flags & IFF_UP) == 0) continue;
        if (it->ifa_addr->sa_family != AF_INET) continue;
        std::array<char, INET_ADDRSTRLEN> buf{};
        const auto *sin = reinterpret_cast<const sockaddr_in *>(it->ifa_addr);
        if (::inet_ntop(AF_INET, &sin->sin_addr, buf.data(), buf.size()) != nullptr) found = buf.data();
    }
    ::freeifaddrs(list);
    return found.empty() ? "127.0.0.1" : found;
}

}  // namespace

std::string read_initiator_name_file(const std::string &path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("InitiatorName=", 0) != 0) continue;
        std::string name = line.substr(std::strlen("InitiatorName="));
        while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
        if (request::iscsi_name_problem(name).empty()) return name;
    }
    return {};
}

HostFacts detect_host_facts(const request::DriverConfig &config, const Logger &log) {
    using request::Tristate;
    HostFacts facts;
    HostCapabilities &caps = facts.capabilities;

    if (config.qemu_iscsi != Tristate::automatic) {
        caps.qemu_iscsi = config.qemu_iscsi == Tristate::yes;
        caps.qemu_iscsi_reason = "set by config qemu_iscsi";
    } else {
        // Debian/Ubuntu build the iSCSI driver as a loadable QEMU module; other builds link it in.
        const std::string module_dir = "/usr/lib/x86_64-linux-gnu/qemu";
        caps.qemu_iscsi = std::filesystem::exists(module_dir + "/block-iscsi.so") ||
                          !std::filesystem::exists(module_dir);
        caps.qemu_iscsi_reason = std::filesystem::exists(module_dir + "/block-iscsi.so")
                                     ? "QEMU iSCSI block module found in " + module_dir
                                 : caps.qemu_iscsi ? "no QEMU module directory; assuming the iSCSI driver is built in"
                                                   : "no block-iscsi.so in " + module_dir;
    }

    const std::string iscsiadm = find_executable({"/usr/sbin/iscsiadm", "/sbin/iscsiadm", "/usr/bin/iscsiadm"});
    if (iscsiadm.empty()) {
        caps.host_iscsi_reason = "iscsiadm not found";
    } else if (!abstract_socket_listening("ISCSIADM_ABSTRACT_NAMESPACE")) {
        caps.host_iscsi_reason = "iscsid is not running";
    } else {
        caps.host_iscsi = true;
        caps.host_iscsi_reason = "iscsiadm found and iscsid answers";
    }

    if (config.host_multipath != Tristate::automatic) {
        caps.multipath = config.host_multipath == Tristate::yes;
        caps.multipath_reason = "set by config host_multipath";
    } else if (abstract_socket_listening("/org/kernel/linux/storage/multipathd")) {
        caps.multipath = true;
        caps.multipath_reason = "multipathd answers";
    } else {
        caps.multipath_reason = "multipathd is not running";
    }

    if (!config.initiator_name.empty()) {
        facts.initiator = config.initiator_name;
        facts.initiator_source = "config initiator_name";
    } else {
        facts.initiator = read_initiator_name_file(config.initiator_name_file);
        facts.initiator_source = facts.initiator.empty() ? "none found in " + config.initiator_name_file
                                                         : config.initiator_name_file;
    }

    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) == 0) facts.host_name = host.data();
    facts.ip = first_ip_address();

    log.debug("host_facts", "qemu_iscsi={} ({}), host_iscsi={} ({}), multipath={} ({}), initiator from {}",
              caps.qemu_iscsi, caps.qemu_iscsi_reason, caps.host_iscsi, caps.host_iscsi_reason, caps.multipath,
              caps.multipath_reason, facts.initiator_source);
    return facts;
}

}  // namespace ivd
