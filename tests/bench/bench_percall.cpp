// Per-call work of connect on the network path, libvirt replaced by the in-memory secret store and probing
// disabled: parse + validate + decide + portal choice + secret put + XML + device_info JSON; connect without a
// guest and disk_config (ABI v2) timed on their own. Also the memory benchmark: RSS across many
// connect/disconnect cycles on the same setup.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "driver/driver.hpp"
#include "not_implemented_path.hpp"
#include "libvirt/secret_store.hpp"
#include "net_disk/network_disk_path.hpp"

#include <cstdio>
#include <string>
#include <vector>
#include <memory>
#include <stdexcept>

namespace ivd::bench {

namespace {

// A Cinder LVM/tgt style connection_info with CHAP and two portals (multipath-capable backends list several).
std::string connection_info(int i) {
    return fmt::format(
        R"({{"driver_volume_type":"iscsi","data":{{"target_discovered":false,"target_portal":"192.0.2.10:3260",)"
        R"("target_iqn":"iqn.2010-10.org.openstack:volume-{0:08d}-2f4c-4e1a-9d3b-5a7c0e6f1b2d","target_lun":1,)"
        R"("target_portals":["192.0.2.10:3260","192.0.2.11:3260"],)"
        R"("target_iqns":["iqn.2010-10.org.openstack:volume-{0:08d}-2f4c-4e1a-9d3b-5a7c0e6f1b2d",)"
        R"("iqn.2010-10.org.openstack:volume-{0:08d}-2f4c-4e1a-9d3b-5a7c0e6f1b2d"],"target_luns":[1,1],)"
        R"("volume_id":"{0:08d}-2f4c-4e1a-9d3b-5a7c0e6f1b2d","auth_method":"CHAP","auth_username":"Zx4mQ9pL2wRt",)"
        R"("auth_password":"hT7vK2nB9sXe4LqW","encrypted":false,"qos_specs":null,"access_mode":"rw","cacheable":false}}}})",
        i);
}

constexpr const char *connector_json =
    R"({"initiator":"iqn.1993-08.org.debian:01:compute-1","ip":"192.0.2.1","host":"compute-1","multipath":false,)"
    R"("platform":"x86_64","os_type":"linux","do_local_attach":false})";
constexpr const char *disk_info_json = R"({"bus":"scsi","dev":"sdb"})";

struct Setup {
    std::shared_ptr<libvirt::MemorySecretStore> secrets = std::make_shared<libvirt::MemorySecretStore>();
    std::unique_ptr<Driver> driver;
    long probes = 0;
};

std::unique_ptr<Setup> make_setup() {
    auto s = std::make_unique<Setup>();
    request::NetDiskConfig config;
    config.probe_portals = false;  // the portal choice runs, without probing
    DriverParts parts;
    HostFacts facts;
    facts.capabilities.qemu_iscsi = true;
    facts.initiator = "iqn.1993-08.org.debian:01:compute-1";
    parts.facts = facts;
    Setup *raw = s.get();
    auto prober = [raw](const std::vector<request::Target> &targets, const iscsi::ProbeOptions &) {
        ++raw->probes;
        return std::vector<iscsi::ProbeResult>(targets.size());
    };
    parts.network = std::make_unique<net_disk::NetworkDiskPath>(config, Logger{}, s->secrets, prober);
    parts.host = std::make_unique<NotImplementedPath>("host");
    auto d = Driver::create(R"({"path":"network","probe_portals":"false"})", Logger{}, std::move(parts));
    if (!d) throw std::runtime_error("driver create: " + d.error().message);
    s->driver = std::move(d).value();
    s->driver->set_abi_version(2);  // as a v2 host negotiates it: connect without a guest, disk_config
    return s;
}

}  // namespace

// Times `call` until the budget is spent and at least min_calls ran; throws on the first failure. `after`
// runs untimed after each call with its result.
template <class Call, class After>
std::vector<double> time_calls(double budget_us, long min_calls, const char *what, Call call, After after) {
    std::vector<double> samples;
    samples.reserve(1 << 20);
    const auto start = Clock::now();
    while (micros_since(start) < budget_us || static_cast<long>(samples.size()) < min_calls) {
        const auto t0 = Clock::now();
        auto r = call();
        samples.push_back(micros_since(t0));
        if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
        after(*r);
    }
    return samples;
}

// --seconds N (default 2): time budget of each measured call; --min-calls N.
// connect_us: connect with a guest device (device_info with the <disk>: the work nova_percall.py does);
// connect_noguest_us: ABI v2 connect without disk_info.dev (host side only, no XML);
// disk_config_us: ABI v2 disk_config from that device_info (what a host pays per guest start or migration).
int run_percall(const Args &args) {
    auto setup = make_setup();
    const std::string ci = connection_info(1);
    const double budget_us = static_cast<double>(args.number("seconds", 2)) * 1e6;
    const long min_calls = args.number("min-calls", 20000);
    std::size_t xml_bytes = 0;
    // --only connect|connect_noguest|disk_config: one phase (callgrind counts per call without the others).
    const std::string only = args.get("only", "");
    const auto runs = [&](const char *phase) { return only.empty() || only == phase; };
    Json::Value out(Json::objectValue);
    out["bench"] = "percall";
    out["unit"] = "us";
    // Each timed connect is disconnected untimed: one attachment at a time, as on a host. (Without it the
    // in-memory ledger grows by a record per call, and inserting into its ever larger set took ~15% of the
    // time in perf.)
    const auto disconnect = [&](const std::string &device_info) {
        if (auto d = setup->driver->disconnect_volume(ci.c_str(), device_info.c_str(), 0); !d) {
            throw std::runtime_error("disconnect: " + d.error().message);
        }
    };
    for (int i = 0; i < 2000; ++i) {  // warm-up: caches, allocator, first-use paths
        auto r = setup->driver->connect_volume(ci.c_str(), connector_json, disk_info_json, 0);
        if (!r) throw std::runtime_error("connect: " + r.error().message);
        xml_bytes = r->size();
        disconnect(*r);
    }
    out["device_info_bytes"] = static_cast<Json::UInt64>(xml_bytes);
    if (runs("connect")) {
        const auto samples = time_calls(budget_us, min_calls, "connect", [&] {
            return setup->driver->connect_volume(ci.c_str(), connector_json, disk_info_json, 0);
        }, disconnect);
        out["calls"] = static_cast<Json::UInt64>(samples.size());
        out["connect_us"] = summary(samples);
    }
    if (runs("connect_noguest")) {
        const auto samples = time_calls(budget_us, min_calls, "connect without a guest", [&] {
            return setup->driver->connect_volume(ci.c_str(), connector_json, nullptr, 0);
        }, disconnect);
        out["connect_noguest_calls"] = static_cast<Json::UInt64>(samples.size());
        out["connect_noguest_us"] = summary(samples);
    }
    const auto device_info = setup->driver->connect_volume(ci.c_str(), connector_json, nullptr, 0);
    if (!device_info) throw std::runtime_error("connect: " + device_info.error().message);
    out["device_info_noguest_bytes"] = static_cast<Json::UInt64>(device_info->size());
    if (runs("disk_config")) {
        const auto samples = time_calls(budget_us, min_calls, "disk_config", [&] {
            return setup->driver->disk_config(ci.c_str(), device_info->c_str(), disk_info_json, 0);
        }, [](const std::string &) {});
        out["disk_config_calls"] = static_cast<Json::UInt64>(samples.size());
        out["disk_config_us"] = summary(samples);
    }
    out["probes"] = static_cast<Json::Int64>(setup->probes);
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

// Prints one input document for the Python (nova) side, so both sides parse the same bytes.
int run_percall_input(const Args &) {
    std::printf("%s\n", connection_info(1).c_str());
    return 0;
}

// --cycles N (default 10000): connect + disconnect of distinct volumes; RSS sampled every cycles/20.
int run_memory(const Args &args) {
    auto setup = make_setup();
    const long cycles = args.number("cycles", 10000);
    const long every = std::max(1L, cycles / 20);
    Json::Value samples(Json::arrayValue);
    auto cycle = [&](long i) {
        const std::string ci = connection_info(static_cast<int>(i));
        auto r = setup->driver->connect_volume(ci.c_str(), connector_json, disk_info_json, 0);
        if (!r) throw std::runtime_error("connect: " + r.error().message);
        auto d = setup->driver->disconnect_volume(ci.c_str(), r->c_str(), 0);
        if (!d) throw std::runtime_error("disconnect: " + d.error().message);
    };
    const std::int64_t rss_start = rss_kib();
    for (long i = 0; i < 200; ++i) cycle(-1 - i);  // warm-up (allocator pools, logger, locks)
    const std::int64_t rss_warm = rss_kib();
    std::int64_t lo = rss_warm, hi = rss_warm;
    const auto start = Clock::now();
    for (long i = 0; i < cycles; ++i) {
        cycle(i);
        if ((i + 1) % every == 0) {
            const std::int64_t r = rss_kib();
            lo = std::min(lo, r);
            hi = std::max(hi, r);
            Json::Value s(Json::objectValue);
            s["cycle"] = static_cast<Json::Int64>(i + 1);
            s["rss_kib"] = static_cast<Json::Int64>(r);
            samples.append(s);
        }
    }
    const double wall_s = micros_since(start) / 1e6;
    Json::Value out(Json::objectValue);
    out["bench"] = "memory";
    out["cycles"] = static_cast<Json::Int64>(cycles);
    out["wall_s"] = wall_s;
    out["rss_start_kib"] = static_cast<Json::Int64>(rss_start);
    out["rss_after_warmup_kib"] = static_cast<Json::Int64>(rss_warm);
    out["rss_end_kib"] = static_cast<Json::Int64>(rss_kib());
    out["rss_min_kib"] = static_cast<Json::Int64>(lo);
    out["rss_max_kib"] = static_cast<Json::Int64>(hi);
    out["rss_spread_kib"] = static_cast<Json::Int64>(hi - lo);
    out["secrets_left"] = static_cast<Json::UInt64>(setup->secrets->size());
    out["samples"] = samples;
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
