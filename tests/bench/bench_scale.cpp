// The scale run: D domains x V CHAP volumes, attach all then detach all with 1/2/4 threads, the plugin and the
// floor (plain libvirt calls) in the same run, plus an async detach of everything by alias.
// The variants are those of bench_e2e.cpp ("plugin", "floor").
#include "bench_common.hpp"
#include "bench_libvirt.hpp"
#include "bench_main.hpp"
#include "bench_plugin.hpp"

#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace ivd::bench {
namespace {

// "1,2,4" -> {1, 2, 4}: one digit per thread count.
std::vector<int> thread_counts_of(const std::string &list) {
    std::vector<int> counts;
    for (const char c : list) {
        if (c >= '1' && c <= '9') counts.push_back(c - '0');
    }
    return counts;
}

// Memory: each idle 128 MiB TCG domain costs QEMU's RSS; keep 4 GiB free for everyone else on the box.
int domains_that_fit(int requested, Json::Value &out) {
    const std::int64_t avail = mem_available_kib();
    const std::int64_t per_domain_kib = 300 * 1024;
    const int fit = static_cast<int>(std::max<std::int64_t>(1, (avail - 4 * 1024 * 1024) / per_domain_kib));
    out["mem_available_kib_before"] = static_cast<Json::Int64>(avail);
    out["domains_requested"] = requested;
    if (fit >= requested) return requested;
    out["scaled_down"] = fmt::format("only {} domains fit in MemAvailable {} MiB at 300 MiB each + 4 GiB spare",
                                     fit, avail / 1024);
    return fit;
}

struct ScaleTargets {
    std::vector<Volume> volumes;  // domain by domain
    std::vector<int> tids;        // one CHAP target per domain
};

// Domain d's volumes are LUNs 1..V of its own target, spread over the lab's 4 portals.
ScaleTargets make_targets(testing::TgtdLab &lab, int n_domains, int n_volumes, const std::string &floor_usage) {
    ScaleTargets targets;
    for (int d = 0; d < n_domains; ++d) {
        const std::string iqn = lab.make_iqn(fmt::format("scale{}", d));
        const int tid = lab.create_target(iqn);
        lab.bind_account(tid, chap_user);
        targets.tids.push_back(tid);
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
            targets.volumes.push_back(std::move(vol));
        }
    }
    return targets;
}

// What every cycle works on: the volumes, the running domains, the plugin, and a connection for lookups.
struct ScaleRig {
    testing::TgtdLab &lab;
    Conn &conn;
    const Domains &domains;
    const Plugin &plugin;
    ScaleTargets &targets;
    std::string secret_prefix;  // usage IDs of the plugin's secrets for this run's volumes
};

// Secrets and tgtd sessions still there after a detach-all.
void record_leftovers(ScaleRig &rig, Json::Value &r) {
    r["secrets_left"] = count_secrets(rig.conn.c, rig.secret_prefix);
    int sessions = 0;
    for (int i = 0; i < 100; ++i) {  // QEMU closes its sessions right after the detach; allow 10 s
        sessions = 0;
        for (int tid : rig.targets.tids) sessions += rig.lab.session_count(tid);
        if (sessions == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    r["sessions_left"] = sessions;
}

// Runs share(t) for t in [0, threads) on as many threads; the first error, prefixed with `what`, is thrown.
template <class Share>
void run_on_threads(int threads, const std::string &what, const Share &share) {
    std::vector<std::string> errors(static_cast<std::size_t>(threads));
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            try {
                share(t);
            } catch (const std::exception &e) {
                errors[static_cast<std::size_t>(t)] = e.what();
            }
        });
    }
    for (auto &th : ts) th.join();
    for (const auto &e : errors) {
        if (!e.empty()) throw std::runtime_error(what + ": " + e);
    }
}

// Thread t's share of an attach-all or detach-all: the volumes of the domains with index % threads == t, one
// after another, each one's time in ms appended to `ms`.
void attach_or_detach_share(ScaleRig &rig, bool use_plugin, bool attach, int threads, int t, std::vector<double> &ms) {
    Conn c;
    std::map<int, virDomainPtr> doms;
    for (auto &v : rig.targets.volumes) {
        if (v.domain % threads != t) continue;
        if (!doms.contains(v.domain)) {
            doms[v.domain] = virDomainLookupByName(c.c, rig.domains.names[static_cast<std::size_t>(v.domain)].c_str());
        }
        virDomainPtr dom = doms[v.domain];
        const auto s = Clock::now();
        if (attach) {
            attach_volume(rig.plugin, dom, v, use_plugin);
        } else {
            detach_volume(rig.plugin, dom, v, use_plugin);
        }
        ms.push_back(micros_since(s) / 1000.0);
    }
    for (auto &[i, d] : doms) virDomainFree(d);
}

std::vector<double> joined(const std::vector<std::vector<double>> &per_thread) {
    std::vector<double> all;
    for (const auto &values : per_thread) all.insert(all.end(), values.begin(), values.end());
    return all;
}

// One attach-all + detach-all cycle of `variant` with `threads` threads; domains split by index.
Json::Value timed_cycle(ScaleRig &rig, const std::string &variant, int threads) {
    const bool use_plugin = variant == "plugin";
    std::vector<std::vector<double>> attach_ms(static_cast<std::size_t>(threads));
    std::vector<std::vector<double>> detach_ms(static_cast<std::size_t>(threads));
    reset_hwm();
    auto s = Clock::now();
    run_on_threads(threads, variant, [&](int t) {
        attach_or_detach_share(rig, use_plugin, true, threads, t, attach_ms[static_cast<std::size_t>(t)]);
    });
    const double attach_wall = micros_since(s) / 1e6;
    s = Clock::now();
    run_on_threads(threads, variant, [&](int t) {
        attach_or_detach_share(rig, use_plugin, false, threads, t, detach_ms[static_cast<std::size_t>(t)]);
    });
    const double detach_wall = micros_since(s) / 1e6;
    const std::vector<double> a = joined(attach_ms);
    const std::vector<double> d = joined(detach_ms);
    Json::Value r(Json::objectValue);
    r["attach_wall_s"] = attach_wall;
    r["detach_wall_s"] = detach_wall;
    r["cycle_wall_s"] = attach_wall + detach_wall;
    r["attach_per_s"] = static_cast<double>(a.size()) / attach_wall;
    r["detach_per_s"] = static_cast<double>(d.size()) / detach_wall;
    r["attach_ms"] = summary(a);
    r["detach_ms"] = summary(d);
    r["peak_rss_kib"] = static_cast<Json::Int64>(hwm_kib());
    record_leftovers(rig, r);
    return r;
}

// Both variants at each thread count, alternating which goes first, and the plugin's cost over the floor's.
Json::Value cycles_by_thread_count(ScaleRig &rig, const std::vector<int> &thread_counts) {
    Json::Value runs(Json::objectValue);
    int order = 0;
    for (int threads : thread_counts) {
        Json::Value per(Json::objectValue);
        // Interleave: alternate which variant goes first.
        const std::vector<std::string> variants =
            order++ % 2 == 0 ? std::vector<std::string>{"floor", "plugin"} : std::vector<std::string>{"plugin", "floor"};
        for (const auto &variant : variants) {
            std::fprintf(stderr, "scale: %d thread(s), %s ...\n", threads, variant.c_str());
            per[variant] = timed_cycle(rig, variant, threads);
        }
        per["ratio_cycle_plugin_to_floor"] =
            per["plugin"]["cycle_wall_s"].asDouble() / per["floor"]["cycle_wall_s"].asDouble();
        per["ratio_attach_p50_plugin_to_floor"] =
            per["plugin"]["attach_ms"]["median"].asDouble() / per["floor"]["attach_ms"]["median"].asDouble();
        per["ratio_detach_p50_plugin_to_floor"] =
            per["plugin"]["detach_ms"]["median"].asDouble() / per["floor"]["detach_ms"]["median"].asDouble();
        runs[std::to_string(threads)] = per;
    }
    return runs;
}

// VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED events as "domain/alias", in arrival order, for as long as this lives.
class RemovedEvents {
public:
    explicit RemovedEvents(virConnectPtr conn) : conn_(conn) {
        callback_ = virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                     VIR_DOMAIN_EVENT_CALLBACK(+on_removed), this, nullptr);
        if (callback_ < 0) throw std::runtime_error("event register: " + libvirt_message());
    }
    ~RemovedEvents() { virConnectDomainEventDeregisterAny(conn_, callback_); }
    RemovedEvents(const RemovedEvents &) = delete;
    RemovedEvents &operator=(const RemovedEvents &) = delete;

    void clear() {
        const std::lock_guard<std::mutex> lock(mu_);
        removed_.clear();
    }
    // The events after the first `seen`, once there are any; empty after 30 s without one.
    std::vector<std::string> after(std::size_t seen) {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return removed_.size() > seen; })) return {};
        return {removed_.begin() + static_cast<long>(seen), removed_.end()};
    }

private:
    static void on_removed(virConnectPtr, virDomainPtr dom, const char *alias, void *opaque) {
        auto *self = static_cast<RemovedEvents *>(opaque);
        const std::lock_guard<std::mutex> lock(self->mu_);
        self->removed_.push_back(std::string(virDomainGetName(dom)) + "/" + alias);
        self->cv_.notify_all();
    }

    virConnectPtr conn_;
    int callback_ = -1;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> removed_;
};

// Every attached disk as a detach-by-alias request, and "domain/alias" -> its volume for the removed events.
struct DetachByAlias {
    std::vector<virDomainPtr> doms;  // one per domain, freed by free_domains()
    std::vector<std::pair<virDomainPtr, std::string>> requests;
    std::map<std::string, const Volume *> by_alias;

    void free_domains() {
        for (virDomainPtr dom : doms) virDomainFree(dom);
        doms.clear();
    }
};

// Untimed: the live aliases of every volume's disk.
DetachByAlias detach_by_alias(ScaleRig &rig) {
    DetachByAlias out;
    for (std::size_t d = 0; d < rig.domains.names.size(); ++d) {
        const std::string &name = rig.domains.names[d];
        virDomainPtr dom = virDomainLookupByName(rig.conn.c, name.c_str());
        out.doms.push_back(dom);
        const auto aliases = live_aliases(dom);
        for (const auto &v : rig.targets.volumes) {
            if (static_cast<std::size_t>(v.domain) != d) continue;
            const std::string alias = aliases.at(v.dev);
            out.by_alias[name + "/" + alias] = &v;
            out.requests.emplace_back(dom, alias);
        }
    }
    return out;
}

struct Drained {
    std::size_t events = 0;
    bool timed_out = false;
};

// Waits for a removed event per request; the plugin variant disconnects each volume as its event arrives.
Drained disconnect_as_removed(ScaleRig &rig, RemovedEvents &events, const DetachByAlias &detach, bool use_plugin) {
    Drained drained;
    while (drained.events < detach.requests.size()) {
        const std::vector<std::string> batch = events.after(drained.events);
        if (batch.empty()) {
            drained.timed_out = true;
            break;
        }
        for (const auto &key : batch) {
            auto it = detach.by_alias.find(key);
            if (use_plugin && it != detach.by_alias.end()) rig.plugin.disconnect(*it->second);
        }
        drained.events += batch.size();
    }
    return drained;
}

// Attach all (4 threads, untimed), then detach every disk at once by alias without waiting disk by disk.
Json::Value async_detach_cycle(ScaleRig &rig, RemovedEvents &events, bool use_plugin) {
    std::vector<std::vector<double>> untimed(4);
    run_on_threads(4, "async attach", [&](int t) {
        attach_or_detach_share(rig, use_plugin, true, 4, t, untimed[static_cast<std::size_t>(t)]);
    });
    DetachByAlias detach = detach_by_alias(rig);
    events.clear();
    reset_hwm();
    const auto s = Clock::now();
    for (auto &[dom, alias] : detach.requests) {
        if (virDomainDetachDeviceAlias(dom, alias.c_str(), VIR_DOMAIN_AFFECT_LIVE) != 0) {
            throw std::runtime_error("detach alias: " + libvirt_message());
        }
    }
    const double requests_s = micros_since(s) / 1e6;
    const Drained drained = disconnect_as_removed(rig, events, detach, use_plugin);
    const double wall = micros_since(s) / 1e6;
    detach.free_domains();
    Json::Value r(Json::objectValue);
    r["detach_wall_s"] = wall;
    r["requests_issued_s"] = requests_s;
    r["detach_per_s"] = static_cast<double>(drained.events) / wall;
    r["events"] = static_cast<Json::UInt64>(drained.events);
    r["timed_out"] = drained.timed_out;
    r["peak_rss_kib"] = static_cast<Json::Int64>(hwm_kib());
    record_leftovers(rig, r);
    return r;
}

// Stretch (--async): the floor, then the plugin, each detaching everything at once.
Json::Value async_detach(ScaleRig &rig) {
    RemovedEvents events(rig.conn.c);
    Json::Value async(Json::objectValue);
    for (const std::string variant : {"floor", "plugin"}) {
        async[variant] = async_detach_cycle(rig, events, variant == "plugin");
    }
    async["ratio_detach_plugin_to_floor"] =
        async["plugin"]["detach_wall_s"].asDouble() / async["floor"]["detach_wall_s"].asDouble();
    return async;
}

}  // namespace

// --domains D (50) --volumes V (20) --threads "1,2,4" --async (stretch: detach by alias, collect events)
// --ephemeral-secrets: the plugin runs with libvirt_ephemeral_secrets = true; --no-probe: probe_portals = false
int run_scale(const Args &args) {
    const int domains_requested = static_cast<int>(args.number("domains", 50));
    const int n_volumes = static_cast<int>(args.number("volumes", 20));
    const std::vector<int> thread_counts = thread_counts_of(args.get("threads", "1,2,4"));
    raise_fd_limit();
    Json::Value out(Json::objectValue);
    out["bench"] = "scale";
    const int n_domains = domains_that_fit(domains_requested, out);
    EventLoop loop;
    testing::LibvirtLab libvirtd(testing::LibvirtLabOptions{.start_domain = false});
    testing::TgtdLab lab;
    while (lab.portals().size() < 4) lab.add_portal();
    lab.add_account(chap_user, chap_password);
    const std::string floor_usage = fmt::format("ivd-bench-floor-{}", ::getpid());
    Conn conn;
    FloorSecret floor_secret(conn.c, floor_usage);

    auto t0 = Clock::now();
    ScaleTargets targets = make_targets(lab, n_domains, n_volumes, floor_usage);
    out["tgtd_setup_s"] = micros_since(t0) / 1e6;
    t0 = Clock::now();
    Domains domains(n_domains, conn.c);
    out["domains_start_s"] = micros_since(t0) / 1e6;
    out["domains"] = n_domains;
    out["volumes_per_domain"] = n_volumes;
    out["attachments"] = static_cast<Json::UInt64>(targets.volumes.size());
    out["mem_available_kib_with_domains"] = static_cast<Json::Int64>(mem_available_kib());
    const bool ephemeral_secrets = args.flag("ephemeral-secrets");
    out["plugin_secrets"] = ephemeral_secrets ? "ephemeral" : "persistent";
    const bool probe_portals = !args.flag("no-probe");
    out["plugin_probe_portals"] = probe_portals;
    const Plugin plugin(ephemeral_secrets, probe_portals);
    ScaleRig rig{lab, conn, domains, plugin, targets, fmt::format("iscsi-volume-driver:bench-scale-{}-", ::getpid())};

    out["threads"] = cycles_by_thread_count(rig, thread_counts);
    if (args.flag("async")) out["async_detach"] = async_detach(rig);
    out["mem_available_kib_end"] = static_cast<Json::Int64>(mem_available_kib());
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
