#include "bench_libvirt.hpp"

#include <fmt/format.h>
#include <libvirt/virterror.h>
#include <pugixml.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

namespace ivd::bench {

namespace {

void ignore_error(void *, virErrorPtr) noexcept {}

std::string domain_xml_for(const std::string &name) {
    return fmt::format(
        "<domain type='qemu'><name>{}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><on_crash>destroy</on_crash>"
        "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
        "<controller type='scsi' index='0' model='virtio-scsi'/><memballoon model='none'/></devices></domain>",
        name);
}

}  // namespace

std::string libvirt_message() {
    const virErrorPtr e = virGetLastError();
    return (e != nullptr && e->message != nullptr) ? e->message : "unknown libvirt error";
}

EventLoop::EventLoop() {
    virInitialize();
    virSetErrorFunc(nullptr, ignore_error);
    if (virEventRegisterDefaultImpl() != 0) throw std::runtime_error("virEventRegisterDefaultImpl failed");
    thread_ = std::thread([this] {
        while (running_) virEventRunDefaultImpl();
    });
    // A periodic timer wakes the loop so that it notices running_ = false.
    timer_ = virEventAddTimeout(100, [](int, void *) {}, nullptr, nullptr);
}

EventLoop::~EventLoop() {
    running_ = false;
    if (timer_ >= 0) virEventRemoveTimeout(timer_);
    thread_.join();
}

Conn::Conn() {
    c = virConnectOpen("qemu:///system");
    if (c == nullptr) throw std::runtime_error("virConnectOpen: " + libvirt_message());
}

Conn::~Conn() {
    if (c != nullptr) virConnectClose(c);
}

std::string scsi_dev_name(int index) {
    std::string suffix;
    for (int i = index; i >= 0; i = i / 26 - 1) suffix.insert(suffix.begin(), static_cast<char>('a' + i % 26));
    return "sd" + suffix;
}

Domains::Domains(int count, virConnectPtr conn) {
    for (int i = 0; i < count; ++i) {
        const std::string name = fmt::format("ivd-lab-{}-bench{}", ::getpid(), i);
        virDomainPtr d = virDomainCreateXML(conn, domain_xml_for(name).c_str(), 0);
        if (d == nullptr) {
            destroy_all();
            throw std::runtime_error(fmt::format("cannot start domain {}: {}", name, libvirt_message()));
        }
        virDomainFree(d);
        names.push_back(name);
    }
}

Domains::~Domains() { destroy_all(); }

void Domains::destroy_all() noexcept {
    std::vector<std::thread> ts;
    std::atomic<std::size_t> next{0};
    for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&] {
            virConnectPtr c = virConnectOpen("qemu:///system");
            if (c == nullptr) return;
            for (std::size_t i; (i = next++) < names.size();) {
                if (virDomainPtr d = virDomainLookupByName(c, names[i].c_str())) {
                    virDomainDestroy(d);
                    virDomainFree(d);
                }
            }
            virConnectClose(c);
        });
    }
    for (auto &t : ts) t.join();
    names.clear();
}

std::string floor_xml(const testing::TgtdPortal &portal, const std::string &iqn, int lun, const std::string &dev,
                      const std::string &serial, const std::string &secret_usage) {
    const std::string auth = secret_usage.empty()
                                 ? std::string()
                                 : fmt::format("<auth username='{}'><secret type='iscsi' usage='{}'/></auth>",
                                               chap_user, secret_usage);
    return fmt::format(
        "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/>"
        "<source protocol='iscsi' name='{}/{}'><host name='{}' port='{}'/>{}<initiator><iqn name='{}'/></initiator>"
        "</source><target dev='{}' bus='scsi'/><serial>{}</serial></disk>",
        iqn, lun, portal.host, portal.port, auth, bench_initiator, dev, serial);
}

FloorSecret::FloorSecret(virConnectPtr conn, std::string usage) : usage_(std::move(usage)) {
    const std::string xml = fmt::format(
        "<secret ephemeral='no' private='yes'><usage type='iscsi'><target>{}</target></usage></secret>", usage_);
    s_ = virSecretDefineXML(conn, xml.c_str(), 0);
    if (s_ == nullptr) throw std::runtime_error("floor secret: " + libvirt_message());
    const std::string pw = chap_password;
    if (virSecretSetValue(s_, reinterpret_cast<const unsigned char *>(pw.data()), pw.size(), 0) != 0) {
        throw std::runtime_error("floor secret value: " + libvirt_message());
    }
}

FloorSecret::~FloorSecret() {
    virSecretUndefine(s_);
    virSecretFree(s_);
}

void attach_or_throw(virDomainPtr dom, const std::string &xml) {
    if (virDomainAttachDeviceFlags(dom, xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
        throw std::runtime_error("attach: " + libvirt_message());
    }
}

void detach_or_throw(virDomainPtr dom, const std::string &xml) {
    if (virDomainDetachDeviceFlags(dom, xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
        throw std::runtime_error("detach: " + libvirt_message());
    }
}

std::map<std::string, std::string> live_aliases(virDomainPtr dom) {
    std::map<std::string, std::string> out;
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (xml == nullptr) return out;
    pugi::xml_document doc;
    doc.load_string(xml);
    std::free(xml);  // NOLINT
    for (auto disk : doc.child("domain").child("devices").children("disk")) {
        out[disk.child("target").attribute("dev").as_string()] = disk.child("alias").attribute("name").as_string();
    }
    return out;
}

void wait_gone(virDomainPtr dom, const std::string &dev) {
    for (int i = 0; i < 500; ++i) {
        if (!live_aliases(dom).contains(dev)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error(dev + " still attached 5 s after detach");
}

int count_secrets(virConnectPtr conn, const std::string &prefix) {
    virSecretPtr *secrets = nullptr;
    const int n = virConnectListAllSecrets(conn, &secrets, 0);
    int matching = 0;
    for (int i = 0; i < n; ++i) {
        const char *usage = virSecretGetUsageID(secrets[i]);
        if (usage != nullptr && std::string(usage).rfind(prefix, 0) == 0) ++matching;
        virSecretFree(secrets[i]);
    }
    std::free(secrets);  // NOLINT
    return matching;
}

}  // namespace ivd::bench
