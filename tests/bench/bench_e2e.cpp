// End-to-end attach/detach against the floor (real libvirtd + TCG domains + tgtd); the scale run, with the same
// "plugin" and "floor" variants, is bench_scale.cpp.
//
// "plugin": connect_volume through the module's C ABI (dlopen), then virDomainAttachDeviceFlags of its disk_xml;
//           detach: virDomainDetachDeviceFlags of that XML, then disconnect_volume.
// "floor":  the same calls with an equivalent hand-written disk XML and a CHAP secret defined beforehand.
// "volume_host" (e2e only): the plugin plus volume-host's own DomainSession attach_disk/detach_disk.
#include "bench_common.hpp"
#include "bench_libvirt.hpp"
#include "bench_main.hpp"
#include "bench_plugin.hpp"

#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ivd::bench {

namespace {

using Timings = std::map<std::string, std::vector<double>>;  // "variant.phase" -> ms

// What every cycle works on: the one domain, the plugin, and volume-host's session on the domain.
struct E2eRig {
    virDomainPtr dom;
    const Plugin &plugin;
    volume_host::DomainSession &volume_host;
};

void record(Timings &t, const std::string &variant, double attach_ms, double detach_ms) {
    t[variant + ".attach"].push_back(attach_ms);
    t[variant + ".detach"].push_back(detach_ms);
}

// One timed attach + detach of the "plugin" or "floor" variant; untimed, the disk is then gone from the live XML.
void libvirt_cycle(const E2eRig &rig, Volume &v, bool use_plugin, Timings *t) {
    auto t0 = Clock::now();
    attach_volume(rig.plugin, rig.dom, v, use_plugin);
    const double a = micros_since(t0) / 1000.0;
    t0 = Clock::now();
    detach_volume(rig.plugin, rig.dom, v, use_plugin);
    const double d = micros_since(t0) / 1000.0;
    wait_gone(rig.dom, v.dev);
    if (t != nullptr) record(*t, use_plugin ? "plugin" : "floor", a, d);
}

// The plugin with volume-host's DomainSession attaching and detaching the disk.
void volume_host_cycle(const E2eRig &rig, Volume &v, Timings &t) {
    auto t0 = Clock::now();
    v.device_info = rig.plugin.connect(v);
    v.disk_xml = disk_xml_of(v.device_info);
    if (auto e = rig.volume_host.attach_disk(v.disk_xml)) throw std::runtime_error(e->message);
    const double a = micros_since(t0) / 1000.0;
    t0 = Clock::now();
    auto d = rig.volume_host.detach_disk(v.dev);
    if (!d) throw std::runtime_error(d.error().message);
    rig.plugin.disconnect(v);
    record(t, "volume_host", a, micros_since(t0) / 1000.0);
}

// After an untimed warm-up (QEMU's iscsi module loaded, tgtd, facts detection), `iterations` rounds of the three
// variants, rotating which goes first.
Timings time_variants(const E2eRig &rig, Volume &v, int iterations) {
    libvirt_cycle(rig, v, false, nullptr);
    libvirt_cycle(rig, v, true, nullptr);
    Timings t;
    const auto floor = [&] { libvirt_cycle(rig, v, false, &t); };
    const auto plugin = [&] { libvirt_cycle(rig, v, true, &t); };
    const auto volume_host = [&] { volume_host_cycle(rig, v, t); };
    for (int i = 0; i < iterations; ++i) {
        switch (i % 3) {
            case 0: floor(); plugin(); volume_host(); break;
            case 1: plugin(); volume_host(); floor(); break;
            default: volume_host(); floor(); plugin(); break;
        }
    }
    return t;
}

// Each variant's summaries, and the plugin's and volume-host's times over the floor's (medians, and paired).
Json::Value compared(Timings &t) {
    Json::Value m(Json::objectValue);
    for (const auto &[k, values] : t) m[k + "_ms"] = summary(values);
    for (const std::string phase : {"attach", "detach"}) {
        std::vector<double> paired;
        for (std::size_t i = 0; i < t["floor." + phase].size(); ++i) {
            paired.push_back(t["plugin." + phase][i] / t["floor." + phase][i]);
        }
        m["ratio_plugin_to_floor_" + phase] = median(t["plugin." + phase]) / median(t["floor." + phase]);
        m["ratio_plugin_to_floor_" + phase + "_paired"] = summary(paired);
        m["ratio_volume_host_to_floor_" + phase] = median(t["volume_host." + phase]) / median(t["floor." + phase]);
    }
    return m;
}

// A target of its own with one LUN, behind CHAP or not, and the variants compared on it.
Json::Value run_mode(const E2eRig &rig, testing::TgtdLab &lab, const std::string &mode, const std::string &floor_usage,
                     int iterations) {
    const bool chap = mode == "chap";
    const std::string iqn = lab.make_iqn("e2e-" + mode);
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    if (chap) lab.bind_account(tid, chap_user);
    Volume v;
    v.dev = "sdb";
    v.ci = connection_info(lab.portal(), iqn, 1, fmt::format("bench-e2e-{}-{}", ::getpid(), mode), chap);
    v.floor_xml = floor_xml(lab.portal(), iqn, 1, v.dev, "bench-e2e", chap ? floor_usage : "");
    Timings t = time_variants(rig, v, iterations);
    Json::Value m = compared(t);
    m["plugin_disk_xml"] = v.disk_xml;
    m["floor_disk_xml"] = v.floor_xml;
    return m;
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
    const E2eRig rig{dom, plugin, **vh};
    for (const std::string mode : {"nochap", "chap"}) out[mode] = run_mode(rig, lab, mode, floor_usage, iterations);
    out["secrets_left"] = count_secrets(conn.c, "iscsi-volume-driver:bench-e2e");
    virDomainFree(dom);
    vh.value().reset();
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
