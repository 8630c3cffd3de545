#include "host_facts/host_facts.hpp"

#include "libvirt/connection.hpp"
#include "libvirt/domain_disks.hpp"
#include "request/iscsi_name.hpp"

#include <libvirt/libvirt.h>
#include <pugixml.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <cstdlib>
#include <fstream>

namespace ivd {

namespace {

// True when something accepts connections on `spec`: "@name" for the abstract namespace (how iscsid and
// multipathd listen), otherwise a filesystem path. A connect is what iscsiadm/multipathd clients do first.
bool socket_answers(const std::string &spec) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const bool abstract = !spec.empty() && spec[0] == '@';
    const std::string_view name = abstract ? std::string_view(spec).substr(1) : std::string_view(spec);
    if (name.empty() || name.size() > sizeof(addr.sun_path) - 1) return false;
    std::memcpy(addr.sun_path + (abstract ? 1 : 0), name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + (abstract ? 1 : 0) + name.size() +
                                            (abstract ? 0 : 1));
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), len) == 0;
    ::close(fd);
    return ok;
}

bool executable(const std::string &path) { return !path.empty() && ::access(path.c_str(), X_OK) == 0; }

// What libvirt says: the emulator it will run for a default domain, and the versions.
struct LibvirtAnswer {
    std::string emulator;
    std::string virt_type;
    std::uint64_t daemon_version = 0;
    std::uint64_t qemu_version = 0;
};

Result<std::string> domain_capabilities(virConnectPtr conn, const char *virt_type) {
    // NULL emulator/arch/machine: libvirt's defaults for this host, i.e. what a domain without <emulator> gets.
    char *xml = virConnectGetDomainCapabilities(conn, nullptr, nullptr, nullptr, virt_type, 0);
    if (xml == nullptr) return libvirt::last_error("virConnectGetDomainCapabilities");
    std::string out(xml);
    std::free(xml);
    return out;
}

Result<LibvirtAnswer> ask_libvirt(const request::HostFactsConfig &config, const Logger &log) {
    const libvirt::ConnectionOptions bounds{config.libvirt_open_timeout, config.libvirt_keepalive_interval_s,
                                            static_cast<unsigned>(config.libvirt_keepalive_count)};
    libvirt::Connection connection(config.libvirt_uri, log, bounds);
    return connection.call([](virConnectPtr conn) -> Result<LibvirtAnswer> {
        LibvirtAnswer answer;
        unsigned long v = 0;
        if (virConnectGetLibVersion(conn, &v) != 0) return libvirt::last_error("virConnectGetLibVersion");
        answer.daemon_version = v;
        if (virConnectGetVersion(conn, &v) == 0) answer.qemu_version = v;
        // KVM first (what Nova asks for); a host without /dev/kvm only has the TCG ("qemu") type.
        auto xml = domain_capabilities(conn, "kvm");
        if (!xml) xml = domain_capabilities(conn, "qemu");
        if (!xml) return std::move(xml).error();
        pugi::xml_document doc;
        if (!doc.load_string(xml->c_str())) return make_error(Status::backend, "domain capabilities XML does not parse");
        const auto caps = doc.child("domainCapabilities");
        answer.emulator = caps.child("path").text().as_string();
        answer.virt_type = caps.child("domain").text().as_string();
        if (answer.emulator.empty()) return make_error(Status::backend, "domain capabilities name no emulator <path>");
        return answer;
    });
}

}  // namespace

Result<std::vector<std::string>> list_domain_block_devices(const request::HostFactsConfig &config, const Logger &log) {
    const libvirt::ConnectionOptions bounds{config.libvirt_open_timeout, config.libvirt_keepalive_interval_s,
                                            static_cast<unsigned>(config.libvirt_keepalive_count)};
    libvirt::Connection connection(config.libvirt_uri, log, bounds);
    return libvirt::list_disk_block_sources(connection);
}

namespace {

void detect_qemu(const request::HostFactsConfig &config, const Logger &log, HostFacts &facts) {
    HostCapabilities &caps = facts.capabilities;
    auto answer = ask_libvirt(config, log);
    if (answer) {
        facts.libvirt_daemon_version = answer->daemon_version;
        facts.qemu_version = answer->qemu_version;
    } else {
        facts.libvirt_problem = answer.error().message;
        facts.complete = false;
    }
    facts.xml = libvirt_xml_features(facts.libvirt_daemon_version);
    if (!facts.xml.reason.empty() && facts.libvirt_daemon_version != 0) log.warning("host_facts", "{}", facts.xml.reason);

    if (!config.qemu_emulator.empty()) {
        facts.emulator = config.qemu_emulator;
        facts.emulator_source = "config qemu_emulator";
    } else if (answer) {
        facts.emulator = answer->emulator;
        facts.emulator_source = fmt::format("libvirt domain capabilities ({})", answer->virt_type);
    }

    if (config.qemu_iscsi != request::Tristate::automatic) {
        caps.qemu_iscsi = config.qemu_iscsi == request::Tristate::yes;
        caps.qemu_iscsi_reason = "set by config qemu_iscsi";
        return;
    }
    if (facts.emulator.empty()) {
        caps.qemu_iscsi_reason = fmt::format("cannot tell which emulator libvirt runs ({}); set qemu_emulator or "
                                             "qemu_iscsi in the config", facts.libvirt_problem);
        if (!answer) {
            // libvirt's silence, not a missing package: decisions report it as such, naming the URI.
            const Error &e = answer.error();
            caps.libvirt_problem = e.message.find(config.libvirt_uri) != std::string::npos
                                       ? e.message
                                       : fmt::format("libvirt at {}: {}", config.libvirt_uri, e.message);
            caps.libvirt_status =
                e.status == Status::timeout || e.status == Status::auth ? e.status : Status::unreachable;
        }
        return;
    }
    const QemuIscsiCheck check = check_qemu_iscsi(facts.emulator, config.qemu_module_dir);
    caps.qemu_iscsi = check.available;
    caps.qemu_iscsi_reason = check.reason;
    facts.qemu_module = check.module;
}

void detect_host_iscsi(const request::HostFactsConfig &config, HostFacts &facts) {
    HostCapabilities &caps = facts.capabilities;
    if (executable(config.iscsiadm_path)) facts.iscsiadm = config.iscsiadm_path;
    facts.iscsid = socket_answers(config.iscsid_socket);
    if (config.host_iscsi != request::Tristate::automatic) {
        caps.host_iscsi = config.host_iscsi == request::Tristate::yes;
        caps.host_iscsi_reason = "set by config host_iscsi";
    } else if (facts.iscsiadm.empty()) {
        caps.host_iscsi_reason = fmt::format("iscsiadm not found at {} (config iscsiadm_path)", config.iscsiadm_path);
    } else if (!facts.iscsid) {
        caps.host_iscsi_reason = fmt::format("iscsid is not running (nothing answers on {})", config.iscsid_socket);
    } else {
        caps.host_iscsi = true;
        caps.host_iscsi_reason = "iscsiadm found and iscsid answers";
    }
}

void detect_multipath(const request::HostFactsConfig &config, HostFacts &facts) {
    HostCapabilities &caps = facts.capabilities;
    facts.multipathd = socket_answers(config.multipathd_socket);
    if (config.host_multipath != request::Tristate::automatic) {
        caps.multipath = config.host_multipath == request::Tristate::yes;
        caps.multipath_reason = "set by config host_multipath";
    } else if (!executable(config.multipath_path) || !executable(config.multipathd_path)) {
        caps.multipath_reason = fmt::format("multipath tools not found at {} and {} (config multipath_path, "
                                            "multipathd_path)", config.multipath_path, config.multipathd_path);
    } else if (!facts.multipathd) {
        caps.multipath_reason = fmt::format("multipathd is not running (nothing answers on {})", config.multipathd_socket);
    } else {
        caps.multipath = true;
        caps.multipath_reason = "multipathd answers";
    }
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

LibvirtXmlFeatures libvirt_xml_features(std::uint64_t daemon_version) {
    LibvirtXmlFeatures f;
    if (daemon_version == 0) {
        f.reason = "libvirt daemon version unknown; assuming current XML forms";
        return f;
    }
    constexpr std::uint64_t auth_in_source_since = 3009000;  // libvirt 3.9.0
    constexpr std::uint64_t initiator_since = 4007000;       // libvirt 4.7.0
    f.auth_in_source = daemon_version >= auth_in_source_since;
    f.initiator = daemon_version >= initiator_since;
    if (!f.initiator) {
        f.reason = fmt::format("libvirt {} is older than 4.7.0: <initiator> is omitted, so QEMU logs in with its "
                               "default initiator name; ", format_version(daemon_version));
    }
    if (!f.auth_in_source) f.reason += "older than 3.9.0: <auth> goes under <disk>, not <source>";
    while (!f.reason.empty() && (f.reason.back() == ' ' || f.reason.back() == ';')) f.reason.pop_back();
    return f;
}

std::string format_version(std::uint64_t version) {
    if (version == 0) return "unknown";
    return fmt::format("{}.{}.{}", version / 1000000, version / 1000 % 1000, version % 1000);
}

HostFacts detect_host_facts(const request::HostFactsConfig &config, const Logger &log) {
    HostFacts facts;
    unsigned long lib = 0;
    if (virGetVersion(&lib, nullptr, nullptr) == 0) facts.libvirt_library_version = lib;
    detect_qemu(config, log, facts);
    detect_host_iscsi(config, facts);
    detect_multipath(config, facts);

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

    const HostCapabilities &caps = facts.capabilities;
    log.info("host_facts",
             "qemu_iscsi={} ({}); host_iscsi={} ({}); multipath={} ({}); emulator {} from {}; libvirt daemon {}, "
             "library {}; initiator from {}{}",
             caps.qemu_iscsi, caps.qemu_iscsi_reason, caps.host_iscsi, caps.host_iscsi_reason, caps.multipath,
             caps.multipath_reason, facts.emulator.empty() ? "unknown" : facts.emulator,
             facts.emulator_source.empty() ? "nowhere" : facts.emulator_source,
             format_version(facts.libvirt_daemon_version), format_version(facts.libvirt_library_version),
             facts.initiator_source, facts.libvirt_problem.empty() ? "" : "; libvirt: " + facts.libvirt_problem);
    return facts;
}

}  // namespace ivd
