// The scale run: D domains x V CHAP volumes, attach all then detach all with 1/2/4 threads, the plugin and the
// floor (plain libvirt calls) in the same run, plus an async detach of everything by alias.
// The variants are those of bench_attach.cpp's e2e ("plugin", "floor").
#include "bench_common.hpp"
#include "bench_libvirt.hpp"
#include "bench_main.hpp"
#include "bench_plugin.hpp"

#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <libvirt/libvirt.h>

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ivd::bench {
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
