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

namespace ivd::bench {

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

}  // namespace ivd::bench
