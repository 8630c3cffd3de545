// End-to-end attach/detach against the floor (real libvirtd + TCG domains + tgtd), and the scale run
// (D domains x V volumes, 1/2/4 threads, plugin vs plain libvirt calls in the same run, plus async detach).
//
// "plugin": connect_volume through the module's C ABI (dlopen), then virDomainAttachDeviceFlags of its disk_xml;
//           detach: virDomainDetachDeviceFlags of that XML, then disconnect_volume.
// "floor":  the same calls with an equivalent hand-written disk XML and a CHAP secret defined beforehand.
// "volume_host" (e2e only): the plugin plus volume-host's own DomainSession attach_disk/detach_disk.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "driver_loader.hpp"
#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pugixml.hpp>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ivd::bench {

namespace {

constexpr const char *chap_user = "benchuser";
constexpr const char *chap_password = "Bench-Secret-0x5eC7";
constexpr const char *bench_initiator = "iqn.1993-08.org.debian:01:ivd-bench";

void ignore_error(void *, virErrorPtr) noexcept {}

std::string libvirt_message() {
    const virErrorPtr e = virGetLastError();
    return (e != nullptr && e->message != nullptr) ? e->message : "unknown libvirt error";
}

// The event loop (needed for device-removed events) must be registered before any connection opens.
class EventLoop {
public:
    EventLoop() {
        virInitialize();
        virSetErrorFunc(nullptr, ignore_error);
        if (virEventRegisterDefaultImpl() != 0) throw std::runtime_error("virEventRegisterDefaultImpl failed");
        thread_ = std::thread([this] {
            while (running_) virEventRunDefaultImpl();
        });
        // A periodic timer wakes the loop so that it notices running_ = false.
        timer_ = virEventAddTimeout(100, [](int, void *) {}, nullptr, nullptr);
    }
    ~EventLoop() {
        running_ = false;
        if (timer_ >= 0) virEventRemoveTimeout(timer_);
        thread_.join();
    }

private:
    std::atomic<bool> running_{true};
    int timer_ = -1;
    std::thread thread_;
};

struct Conn {
    virConnectPtr c = nullptr;
    Conn() {
        c = virConnectOpen("qemu:///system");
        if (c == nullptr) throw std::runtime_error("virConnectOpen: " + libvirt_message());
    }
    ~Conn() {
        if (c != nullptr) virConnectClose(c);
    }
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;
};

std::string domain_xml_for(const std::string &name) {
    return fmt::format(
        "<domain type='qemu'><name>{}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><on_crash>destroy</on_crash>"
        "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
        "<controller type='scsi' index='0' model='virtio-scsi'/><memballoon model='none'/></devices></domain>",
        name);
}

std::string scsi_dev_name(int index) {
    std::string suffix;
    for (int i = index; i >= 0; i = i / 26 - 1) suffix.insert(suffix.begin(), static_cast<char>('a' + i % 26));
    return "sd" + suffix;
}

// Transient TCG domains named like LibvirtLab's ("ivd-lab-<pid>-..."), so a crashed run's domains are reaped
// by the next lab; destroyed in parallel at the end.
class Domains {
public:
    Domains(int count, virConnectPtr conn) {
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
    ~Domains() { destroy_all(); }
    void destroy_all() noexcept {
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
    std::vector<std::string> names;
};

struct Volume {
    int domain = 0;
    std::string dev;
    std::string ci;          // connection_info JSON
    std::string floor_xml;   // the hand-written equivalent
    std::string device_info; // set between plugin connect and disconnect
    std::string disk_xml;
    int tid = 0;
};

std::string connection_info(const testing::TgtdPortal &portal, const std::string &iqn, int lun,
                            const std::string &volume_id, bool chap) {
    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    Json::Value &d = ci["data"];
    d["target_portal"] = portal.to_string();
    d["target_iqn"] = iqn;
    d["target_lun"] = lun;
    d["volume_id"] = volume_id;
    d["access_mode"] = "rw";
    if (chap) {
        d["auth_method"] = "CHAP";
        d["auth_username"] = chap_user;
        d["auth_password"] = chap_password;
    }
    return to_json(ci);
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

// A secret the floor's XML refers to, defined once before timing (the floor does not pay for it).
class FloorSecret {
public:
    FloorSecret(virConnectPtr conn, std::string usage) : usage_(std::move(usage)) {
        const std::string xml = fmt::format(
            "<secret ephemeral='no' private='yes'><usage type='iscsi'><target>{}</target></usage></secret>", usage_);
        s_ = virSecretDefineXML(conn, xml.c_str(), 0);
        if (s_ == nullptr) throw std::runtime_error("floor secret: " + libvirt_message());
        const std::string pw = chap_password;
        if (virSecretSetValue(s_, reinterpret_cast<const unsigned char *>(pw.data()), pw.size(), 0) != 0) {
            throw std::runtime_error("floor secret value: " + libvirt_message());
        }
    }
    ~FloorSecret() {
        virSecretUndefine(s_);
        virSecretFree(s_);
    }
    const std::string &usage() const { return usage_; }

private:
    std::string usage_;
    virSecretPtr s_ = nullptr;
};

// The driver module through its C ABI, as a compute host loads it.
class Plugin {
public:
    // ephemeral_secrets: the driver's libvirt_ephemeral_secrets (CHAP secrets in libvirtd's memory only).
    // probe_portals: the driver's probe_portals (false: the portal is not logged in to before the disk is made).
    explicit Plugin(bool ephemeral_secrets = false, bool probe_portals = true) {
        const char *path = std::getenv("IVD_BENCH_MODULE");
        host_ = vd_host_table{sizeof(vd_host_table), nullptr, nullptr};
        auto m = volume_host::LoadedModule::load(path != nullptr ? path : IVD_MODULE_PATH, host_);
        if (!m) throw std::runtime_error("load: " + m.error().message);
        const std::string config = fmt::format(
            R"({{"path":"network","initiator_name":"{}","disk_cache":"none","disk_io":"native","libvirt_ephemeral_secrets":"{}",)"
            R"("probe_portals":"{}"}})",
            bench_initiator, ephemeral_secrets ? "true" : "false", probe_portals ? "true" : "false");
        auto d = volume_host::DriverInstance::create(*m, config);
        if (!d) throw std::runtime_error("create: " + d.error().message);
        driver_ = std::move(*d);
        char *out = nullptr;
        if (table().connector_properties(driver_->handle(), 0, &out) != VD_OK) throw std::runtime_error(driver_->last_error());
        connector_ = volume_host::take_driver_string(table(), out);
    }
    const vd_driver_table &table() const { return driver_->table(); }
    // Returns device_info.
    std::string connect(const Volume &v) const {
        char *out = nullptr;
        const std::string disk = fmt::format(R"({{"bus":"scsi","dev":"{}"}})", v.dev);
        if (table().connect_volume(driver_->handle(), v.ci.c_str(), connector_.c_str(), disk.c_str(), 0, &out) != VD_OK) {
            throw std::runtime_error("connect_volume: " + driver_->last_error());
        }
        return volume_host::take_driver_string(table(), out);
    }
    void disconnect(const Volume &v) const {
        if (table().disconnect_volume(driver_->handle(), v.ci.c_str(), v.device_info.c_str(), 0) != VD_OK) {
            throw std::runtime_error("disconnect_volume: " + driver_->last_error());
        }
    }

private:
    vd_host_table host_{};
    std::unique_ptr<volume_host::DriverInstance> driver_;
    std::string connector_;
};

// Host side of the plugin variant: read disk_xml out of device_info (jsoncpp, as a host would).
std::string disk_xml_of(const std::string &device_info) { return parse_json(device_info)["disk_xml"].asString(); }

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

// Untimed: waits until `dev` is gone from the live XML (libvirt normally returns after DEVICE_DELETED already).
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

std::int64_t mem_available_kib() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::int64_t value = 0;
    std::string unit;
    while (in >> key >> value >> unit) {
        if (key == "MemAvailable:") return value;
    }
    return -1;
}

}  // namespace

// --iterations N (20)
int run_e2e(const Args &args) {
    const int iterations = static_cast<int>(args.number("iterations", 20));
    EventLoop loop;
    testing::LibvirtLab libvirtd(testing::LibvirtLabOptions{.start_domain = false});
    testing::TgtdLab lab;
    Conn conn;
    Domains domains(1, conn.c);
    virDomainPtr dom = virDomainLookupByName(conn.c, domains.names[0].c_str());
    const std::string floor_usage = fmt::format("ivd-bench-floor-{}", ::getpid());
    FloorSecret floor_secret(conn.c, floor_usage);
    lab.add_account(chap_user, chap_password);
    Plugin plugin;
    auto vh = volume_host::DomainSession::open("qemu:///system", domains.names[0]);
    if (!vh) throw std::runtime_error(vh.error().message);

    Json::Value out(Json::objectValue);
    out["bench"] = "e2e";
    out["iterations"] = iterations;
    for (const bool chap : {false, true}) {
        const std::string mode = chap ? "chap" : "nochap";
        const std::string iqn = lab.make_iqn("e2e-" + mode);
        const int tid = lab.create_target(iqn);
        lab.add_lun(tid, 1);
        if (chap) lab.bind_account(tid, chap_user);
        Volume v;
        v.dev = "sdb";
        v.ci = connection_info(lab.portal(), iqn, 1, fmt::format("bench-e2e-{}-{}", ::getpid(), mode), chap);
        v.floor_xml = floor_xml(lab.portal(), iqn, 1, v.dev, "bench-e2e", chap ? floor_usage : "");
        std::map<std::string, std::vector<double>> t;  // variant.phase -> ms
        auto floor_cycle = [&](bool record) {
            auto t0 = Clock::now();
            attach_or_throw(dom, v.floor_xml);
            const double a = micros_since(t0) / 1000.0;
            t0 = Clock::now();
            detach_or_throw(dom, v.floor_xml);
            const double d = micros_since(t0) / 1000.0;
            wait_gone(dom, v.dev);
            if (record) t["floor.attach"].push_back(a), t["floor.detach"].push_back(d);
        };
        auto plugin_cycle = [&](bool record) {
            auto t0 = Clock::now();
            v.device_info = plugin.connect(v);
            v.disk_xml = disk_xml_of(v.device_info);
            attach_or_throw(dom, v.disk_xml);
            const double a = micros_since(t0) / 1000.0;
            t0 = Clock::now();
            detach_or_throw(dom, v.disk_xml);
            plugin.disconnect(v);
            const double d = micros_since(t0) / 1000.0;
            wait_gone(dom, v.dev);
            if (record) t["plugin.attach"].push_back(a), t["plugin.detach"].push_back(d);
        };
        auto vh_cycle = [&](bool record) {
            auto t0 = Clock::now();
            v.device_info = plugin.connect(v);
            v.disk_xml = disk_xml_of(v.device_info);
            if (auto e = (*vh)->attach_disk(v.disk_xml)) throw std::runtime_error(e->message);
            const double a = micros_since(t0) / 1000.0;
            t0 = Clock::now();
            auto d = (*vh)->detach_disk(v.dev);
            if (!d) throw std::runtime_error(d.error().message);
            plugin.disconnect(v);
            const double dd = micros_since(t0) / 1000.0;
            if (record) t["volume_host.attach"].push_back(a), t["volume_host.detach"].push_back(dd);
        };
        floor_cycle(false);  // warm-up: QEMU's iscsi module loaded, tgtd, facts detection
        plugin_cycle(false);
        for (int i = 0; i < iterations; ++i) {
            switch (i % 3) {
                case 0: floor_cycle(true); plugin_cycle(true); vh_cycle(true); break;
                case 1: plugin_cycle(true); vh_cycle(true); floor_cycle(true); break;
                default: vh_cycle(true); floor_cycle(true); plugin_cycle(true); break;
            }
        }
        Json::Value m(Json::objectValue);
        for (const auto &[k, values] : t) m[k + "_ms"] = summary(values);
        for (const std::string phase : {"attach", "detach"}) {
            std::vector<double> r, rv;
            for (std::size_t i = 0; i < t["floor." + phase].size(); ++i) {
                r.push_back(t["plugin." + phase][i] / t["floor." + phase][i]);
                rv.push_back(t["volume_host." + phase][i] / t["floor." + phase][i]);
            }
            m["ratio_plugin_to_floor_" + phase] = median(t["plugin." + phase]) / median(t["floor." + phase]);
            m["ratio_plugin_to_floor_" + phase + "_paired"] = summary(r);
            m["ratio_volume_host_to_floor_" + phase] = median(t["volume_host." + phase]) / median(t["floor." + phase]);
        }
        m["plugin_disk_xml"] = v.disk_xml;
        m["floor_disk_xml"] = v.floor_xml;
        out[mode] = m;
    }
    out["secrets_left"] = count_secrets(conn.c, "iscsi-volume-driver:bench-e2e");
    virDomainFree(dom);
    vh.value().reset();
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

// --domains D (50) --volumes V (20) --threads "1,2,4" --async (stretch: detach by alias, collect events)
// --ephemeral-secrets: the plugin runs with libvirt_ephemeral_secrets = true; --no-probe: probe_portals = false
int run_scale(const Args &args) {
    int n_domains = static_cast<int>(args.number("domains", 50));
    const int n_volumes = static_cast<int>(args.number("volumes", 20));
    std::vector<int> thread_counts;
    for (const char c : args.get("threads", "1,2,4")) {
        if (c >= '1' && c <= '9') thread_counts.push_back(c - '0');
    }
    raise_fd_limit();
    Json::Value out(Json::objectValue);
    out["bench"] = "scale";
    // Memory: each idle 128 MiB TCG domain costs QEMU's RSS; keep 4 GiB free for everyone else on the box.
    const std::int64_t avail = mem_available_kib();
    const std::int64_t per_domain_kib = 300 * 1024;
    const int fit = static_cast<int>(std::max<std::int64_t>(1, (avail - 4 * 1024 * 1024) / per_domain_kib));
    out["mem_available_kib_before"] = static_cast<Json::Int64>(avail);
    out["domains_requested"] = n_domains;
    if (fit < n_domains) {
        out["scaled_down"] = fmt::format("only {} domains fit in MemAvailable {} MiB at 300 MiB each + 4 GiB spare",
                                         fit, avail / 1024);
        n_domains = fit;
    }
    EventLoop loop;
    testing::LibvirtLab libvirtd(testing::LibvirtLabOptions{.start_domain = false});
    testing::TgtdLab lab;
    while (lab.portals().size() < 4) lab.add_portal();
    lab.add_account(chap_user, chap_password);
    const std::string floor_usage = fmt::format("ivd-bench-floor-{}", ::getpid());
    Conn conn;
    FloorSecret floor_secret(conn.c, floor_usage);

    auto t0 = Clock::now();
    std::vector<Volume> volumes;
    std::vector<int> tids;
    for (int d = 0; d < n_domains; ++d) {
        const std::string iqn = lab.make_iqn(fmt::format("scale{}", d));
        const int tid = lab.create_target(iqn);
        lab.bind_account(tid, chap_user);
        tids.push_back(tid);
        for (int v = 0; v < n_volumes; ++v) {
            lab.add_lun(tid, v + 1, 16ull << 20);
            const auto &portal = lab.portals()[static_cast<std::size_t>((d * n_volumes + v) % 4)];
            Volume vol;
            vol.domain = d;
            vol.tid = tid;
            vol.dev = scsi_dev_name(v);
            const std::string id = fmt::format("bench-scale-{}-{}-{}", ::getpid(), d, v);
            vol.ci = connection_info(portal, iqn, v + 1, id, true);
            vol.floor_xml = floor_xml(portal, iqn, v + 1, vol.dev, id, floor_usage);
            volumes.push_back(std::move(vol));
        }
    }
    out["tgtd_setup_s"] = micros_since(t0) / 1e6;
    t0 = Clock::now();
    Domains domains(n_domains, conn.c);
    out["domains_start_s"] = micros_since(t0) / 1e6;
    out["domains"] = n_domains;
    out["volumes_per_domain"] = n_volumes;
    out["attachments"] = static_cast<Json::UInt64>(volumes.size());
    out["mem_available_kib_with_domains"] = static_cast<Json::Int64>(mem_available_kib());
    const bool ephemeral_secrets = args.flag("ephemeral-secrets");
    out["plugin_secrets"] = ephemeral_secrets ? "ephemeral" : "persistent";
    const bool probe_portals = !args.flag("no-probe");
    out["plugin_probe_portals"] = probe_portals;
    Plugin plugin(ephemeral_secrets, probe_portals);
    const std::string our_prefix = fmt::format("iscsi-volume-driver:bench-scale-{}-", ::getpid());

    auto leftovers = [&](Json::Value &r) {
        r["secrets_left"] = count_secrets(conn.c, our_prefix);
        int sessions = 0;
        for (int i = 0; i < 100; ++i) {  // QEMU closes its sessions right after the detach; allow 10 s
            sessions = 0;
            for (int tid : tids) sessions += lab.session_count(tid);
            if (sessions == 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        r["sessions_left"] = sessions;
    };

    // One attach-all + detach-all cycle of `variant` with `threads` threads; domains split by index.
    auto cycle = [&](const std::string &variant, int threads) {
        const bool use_plugin = variant == "plugin";
        std::vector<std::vector<double>> attach_ms(threads), detach_ms(threads);
        std::vector<std::string> errors(threads);
        reset_hwm();
        auto phase = [&](bool attach) {
            std::vector<std::thread> ts;
            for (int t = 0; t < threads; ++t) {
                ts.emplace_back([&, t] {
                    try {
                        Conn c;
                        std::map<int, virDomainPtr> doms;
                        for (auto &v : volumes) {
                            if (v.domain % threads != t) continue;
                            if (!doms.contains(v.domain)) {
                                doms[v.domain] = virDomainLookupByName(c.c, domains.names[v.domain].c_str());
                            }
                            virDomainPtr dom = doms[v.domain];
                            const auto s = Clock::now();
                            if (attach) {
                                if (use_plugin) {
                                    v.device_info = plugin.connect(v);
                                    v.disk_xml = disk_xml_of(v.device_info);
                                    attach_or_throw(dom, v.disk_xml);
                                } else {
                                    attach_or_throw(dom, v.floor_xml);
                                }
                                attach_ms[t].push_back(micros_since(s) / 1000.0);
                            } else {
                                detach_or_throw(dom, use_plugin ? v.disk_xml : v.floor_xml);
                                if (use_plugin) plugin.disconnect(v);
                                detach_ms[t].push_back(micros_since(s) / 1000.0);
                            }
                        }
                        for (auto &[i, d] : doms) virDomainFree(d);
                    } catch (const std::exception &e) {
                        errors[t] = e.what();
                    }
                });
            }
            for (auto &th : ts) th.join();
            for (const auto &e : errors) {
                if (!e.empty()) throw std::runtime_error(variant + ": " + e);
            }
        };
        Json::Value r(Json::objectValue);
        auto s = Clock::now();
        phase(true);
        const double attach_wall = micros_since(s) / 1e6;
        s = Clock::now();
        phase(false);
        const double detach_wall = micros_since(s) / 1e6;
        std::vector<double> a, d;
        for (int t = 0; t < threads; ++t) {
            a.insert(a.end(), attach_ms[t].begin(), attach_ms[t].end());
            d.insert(d.end(), detach_ms[t].begin(), detach_ms[t].end());
        }
        r["attach_wall_s"] = attach_wall;
        r["detach_wall_s"] = detach_wall;
        r["cycle_wall_s"] = attach_wall + detach_wall;
        r["attach_per_s"] = static_cast<double>(a.size()) / attach_wall;
        r["detach_per_s"] = static_cast<double>(d.size()) / detach_wall;
        r["attach_ms"] = summary(a);
        r["detach_ms"] = summary(d);
        r["peak_rss_kib"] = static_cast<Json::Int64>(hwm_kib());
        leftovers(r);
        return r;
    };

    Json::Value runs(Json::objectValue);
    int order = 0;
    for (int threads : thread_counts) {
        Json::Value per(Json::objectValue);
        // Interleave: alternate which variant goes first.
        const std::vector<std::string> variants =
            order++ % 2 == 0 ? std::vector<std::string>{"floor", "plugin"} : std::vector<std::string>{"plugin", "floor"};
        for (const auto &variant : variants) {
            std::fprintf(stderr, "scale: %d thread(s), %s ...\n", threads, variant.c_str());
            per[variant] = cycle(variant, threads);
        }
        per["ratio_cycle_plugin_to_floor"] = per["plugin"]["cycle_wall_s"].asDouble() / per["floor"]["cycle_wall_s"].asDouble();
        per["ratio_attach_p50_plugin_to_floor"] =
            per["plugin"]["attach_ms"]["median"].asDouble() / per["floor"]["attach_ms"]["median"].asDouble();
        per["ratio_detach_p50_plugin_to_floor"] =
            per["plugin"]["detach_ms"]["median"].asDouble() / per["floor"]["detach_ms"]["median"].asDouble();
        runs[std::to_string(threads)] = per;
    }
    out["threads"] = runs;

    if (args.flag("async")) {
        // Stretch: attach all (4 threads, untimed here), then detach every disk at once by alias without waiting
        // disk by disk, collecting VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED; the plugin variant disconnects each
        // volume as its event arrives.
        std::mutex mu;
        std::condition_variable cv;
        std::vector<std::string> removed;  // "domain/alias"
        struct Ctx {
            std::mutex *mu;
            std::condition_variable *cv;
            std::vector<std::string> *removed;
        } ctx{&mu, &cv, &removed};
        auto cb = [](virConnectPtr, virDomainPtr dom, const char *alias, void *opaque) {
            auto *c = static_cast<Ctx *>(opaque);
            const std::lock_guard<std::mutex> lock(*c->mu);
            c->removed->push_back(std::string(virDomainGetName(dom)) + "/" + alias);
            c->cv->notify_all();
        };
        const int callback = virConnectDomainEventRegisterAny(conn.c, nullptr, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                              VIR_DOMAIN_EVENT_CALLBACK(+cb), &ctx, nullptr);
        if (callback < 0) throw std::runtime_error("event register: " + libvirt_message());
        Json::Value async(Json::objectValue);
        for (const std::string variant : {"floor", "plugin"}) {
            const bool use_plugin = variant == "plugin";
            // Attach all with 4 threads (reuse the cycle's attach code path through a plain loop).
            {
                std::vector<std::thread> ts;
                std::vector<std::string> errors(4);
                for (int t = 0; t < 4; ++t) {
                    ts.emplace_back([&, t] {
                        try {
                            Conn c;
                            for (auto &v : volumes) {
                                if (v.domain % 4 != t) continue;
                                virDomainPtr dom = virDomainLookupByName(c.c, domains.names[v.domain].c_str());
                                if (use_plugin) {
                                    v.device_info = plugin.connect(v);
                                    v.disk_xml = disk_xml_of(v.device_info);
                                }
                                attach_or_throw(dom, use_plugin ? v.disk_xml : v.floor_xml);
                                virDomainFree(dom);
                            }
                        } catch (const std::exception &e) {
                            errors[t] = e.what();
                        }
                    });
                }
                for (auto &th : ts) th.join();
                for (const auto &e : errors) {
                    if (!e.empty()) throw std::runtime_error("async attach: " + e);
                }
            }
            // Aliases (untimed) and the index from "domain/alias" to the volume.
            std::map<std::string, Volume *> by_alias;
            std::vector<std::pair<virDomainPtr, std::string>> requests;
            for (int d = 0; d < n_domains; ++d) {
                virDomainPtr dom = virDomainLookupByName(conn.c, domains.names[d].c_str());
                const auto aliases = live_aliases(dom);
                for (auto &v : volumes) {
                    if (v.domain != d) continue;
                    const std::string alias = aliases.at(v.dev);
                    by_alias[domains.names[d] + "/" + alias] = &v;
                    requests.emplace_back(dom, alias);
                }
            }
            {
                const std::lock_guard<std::mutex> lock(mu);
                removed.clear();
            }
            reset_hwm();
            const auto s = Clock::now();
            for (auto &[dom, alias] : requests) {
                if (virDomainDetachDeviceAlias(dom, alias.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
                    throw std::runtime_error("detach alias: " + libvirt_message());
                }
            }
            const double requests_s = micros_since(s) / 1e6;
            std::size_t handled = 0;
            bool timed_out = false;
            while (handled < requests.size()) {
                std::vector<std::string> batch;
                {
                    std::unique_lock<std::mutex> lock(mu);
                    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return removed.size() > handled; })) {
                        timed_out = true;
                        break;
                    }
                    batch.assign(removed.begin() + static_cast<long>(handled), removed.end());
                }
                for (const auto &key : batch) {
                    auto it = by_alias.find(key);
                    if (use_plugin && it != by_alias.end()) plugin.disconnect(*it->second);
                }
                handled += batch.size();
            }
            const double wall = micros_since(s) / 1e6;
            for (auto &[dom, alias] : requests) (void)alias;
            std::map<virDomainPtr, bool> freed;
            for (auto &[dom, alias] : requests) {
                if (!freed[dom]) virDomainFree(dom), freed[dom] = true;
            }
            Json::Value r(Json::objectValue);
            r["detach_wall_s"] = wall;
            r["requests_issued_s"] = requests_s;
            r["detach_per_s"] = static_cast<double>(handled) / wall;
            r["events"] = static_cast<Json::UInt64>(handled);
            r["timed_out"] = timed_out;
            r["peak_rss_kib"] = static_cast<Json::Int64>(hwm_kib());
            leftovers(r);
            async[variant] = r;
        }
        async["ratio_detach_plugin_to_floor"] =
            async["plugin"]["detach_wall_s"].asDouble() / async["floor"]["detach_wall_s"].asDouble();
        virConnectDomainEventDeregisterAny(conn.c, callback);
        out["async_detach"] = async;
    }
    out["mem_available_kib_end"] = static_cast<Json::Int64>(mem_available_kib());
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
