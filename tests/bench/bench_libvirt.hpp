// The libvirt side shared by the e2e and scale benchmarks: event loop, connections, transient TCG domains, the
// floor's hand-written disk XML and CHAP secret, and attach/detach calls that throw. Benchmarks only (not tests).
#pragma once

#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace ivd::bench {

// The CHAP account on tgtd and the initiator name both variants log in with.
inline constexpr const char *chap_user = "benchuser";
inline constexpr const char *chap_password = "Bench-Secret-0x5eC7";
inline constexpr const char *bench_initiator = "iqn.1993-08.org.debian:01:ivd-bench";

// The message of libvirt's last error on this thread.
std::string libvirt_message();

// The event loop (needed for device-removed events) must be registered before any connection opens.
class EventLoop {
public:
    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop &) = delete;
    EventLoop &operator=(const EventLoop &) = delete;

private:
    std::atomic<bool> running_{true};
    int timer_ = -1;
    std::thread thread_;
};

struct Conn {
    virConnectPtr c = nullptr;
    Conn();
    ~Conn();
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;
};

// "sda", "sdb", ... "sdz", "sdaa": the target dev of the index-th disk.
std::string scsi_dev_name(int index);

// Transient TCG domains named like LibvirtLab's ("ivd-lab-<pid>-..."), so a crashed run's domains are reaped
// by the next lab; destroyed in parallel at the end.
class Domains {
public:
    Domains(int count, virConnectPtr conn);
    ~Domains();
    Domains(const Domains &) = delete;
    Domains &operator=(const Domains &) = delete;
    void destroy_all() noexcept;
    std::vector<std::string> names;
};

// The floor's hand-written equivalent of the plugin's disk XML; secret_usage "" for no CHAP.
std::string floor_xml(const testing::TgtdPortal &portal, const std::string &iqn, int lun, const std::string &dev,
                      const std::string &serial, const std::string &secret_usage);

// A secret the floor's XML refers to, defined once before timing (the floor does not pay for it).
class FloorSecret {
public:
    FloorSecret(virConnectPtr conn, std::string usage);
    ~FloorSecret();
    FloorSecret(const FloorSecret &) = delete;
    FloorSecret &operator=(const FloorSecret &) = delete;
    const std::string &usage() const { return usage_; }

private:
    std::string usage_;
    virSecretPtr s_ = nullptr;
};

void attach_or_throw(virDomainPtr dom, const std::string &xml);
void detach_or_throw(virDomainPtr dom, const std::string &xml);

// target dev -> alias of each disk in the live XML.
std::map<std::string, std::string> live_aliases(virDomainPtr dom);

// Untimed: waits until `dev` is gone from the live XML (libvirt normally returns after DEVICE_DELETED already).
void wait_gone(virDomainPtr dom, const std::string &dev);

// Secrets whose usage ID starts with `prefix`.
int count_secrets(virConnectPtr conn, const std::string &prefix);

}  // namespace ivd::bench
