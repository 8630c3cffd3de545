// Secret-leak scan: runs the scenarios that handle passwords (success and failure, both attach paths, through
// volume-host and in process through the module) with recognisable CHAP and discovery passwords, then searches
// everything those runs could have written for them: the host log callback at debug level, every error message,
// volume-host's stdout/stderr, every argv the simulated host recorded, every file left under the test's
// directories (the simulated host's node records included; while a volume is connected only they, root's and 0600,
// may hold it), libvirtd's log,
// the domain's QEMU log, tgtd's log and libvirt's secret store after disconnect. The needle is the plain bytes and
// their base64 (libvirt's at-rest and wire form of a secret value).
#include "driver_loader.hpp"
#include "fault_support.hpp"
#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <mutex>

namespace {

using namespace ivd::faults;
using namespace std::chrono_literals;
using ivd::testing::LibvirtLab;
using ivd::testing::TgtdLab;

// Long enough to live on the heap in any std::string copy (no small-string buffer), and unmistakable.
const std::string chap_user = "leakscan-user";
const std::string chap_password = "LeakScan-ChapPw-9f3e1c7a5b";
const std::string discovery_user = "leakscan-disc";
const std::string discovery_password = "LeakScan-DiscPw-2d8b6e4f0a";
const std::string wrong_password = "LeakScan-WrongPw-6c1a9e3d7f";
const std::string initiator = "iqn.1993-08.org.debian:01:leakscan";

std::string base64(const std::string &in) {
    static const char *table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], table[v & 63]};
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {table[v >> 18], table[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], '='};
    }
    return out;
}

struct Needle {
    std::string label;
    std::string bytes;
};

std::vector<Needle> needles() {
    std::vector<Needle> n;
    for (const auto &[label, pw] : {std::pair<std::string, std::string>{"CHAP password", chap_password},
                                    {"discovery password", discovery_password},
                                    {"wrong CHAP password", wrong_password}}) {
        n.push_back({label, pw});
        // base64 of the password: three alignments of it inside a longer base64 text are not checked; the
        // stand-alone encoding is what libvirt stores and sends.
        n.push_back({label + " (base64)", base64(pw)});
    }
    return n;
}

// Every place text came from, so a hit names its source.
struct Haystack {
    std::vector<std::pair<std::string, std::string>> pieces;  // source, text
    void add(std::string source, std::string text) { pieces.emplace_back(std::move(source), std::move(text)); }
    std::vector<std::string> hits() const {
        std::vector<std::string> out;
        for (const auto &[source, text] : pieces) {
            for (const Needle &n : needles()) {
                if (text.find(n.bytes) != std::string::npos) out.push_back(n.label + " in " + source);
            }
        }
        return out;
    }
    std::size_t bytes() const {
        std::size_t n = 0;
        for (const auto &p : pieces) n += p.second.size();
        return n;
    }
};

void add_tree(Haystack &h, const fs::path &root, const fs::path &skip = {}) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
        if (!skip.empty() && it->path() == skip) {
            it.disable_recursion_pending();
            continue;
        }
        std::error_code ec2;
        if (it->is_regular_file(ec2) && !it->is_symlink(ec2)) h.add(it->path().string(), slurp(it->path()));
    }
}

// Every node record is a root-owned regular file with mode 0600 (the only files allowed to hold the password).
void expect_root_only_records(const fs::path &nodes) {
    std::error_code ec;
    std::size_t records = 0;
    for (fs::recursive_directory_iterator it(nodes, ec), end; !ec && it != end; it.increment(ec)) {
        struct stat st {};
        ASSERT_EQ(::lstat(it->path().c_str(), &st), 0) << it->path();
        if (S_ISDIR(st.st_mode)) continue;
        ++records;
        EXPECT_TRUE(S_ISREG(st.st_mode)) << it->path();
        EXPECT_EQ(st.st_mode & 07777, 0600u) << it->path();
        EXPECT_EQ(st.st_uid, 0u) << it->path();
    }
    EXPECT_GT(records, 0u) << "no node record under " << nodes;
}

struct LogSink {
    std::mutex mutex;
    std::vector<std::string> lines;
    static void callback(void *user, std::int32_t level, const char *component, const char *message) {
        auto *self = static_cast<LogSink *>(user);
        const std::lock_guard<std::mutex> lock(self->mutex);
        self->lines.push_back(std::to_string(level) + " " + (component ? component : "-") + ": " + (message ? message : ""));
    }
};

// An in-process host: the module through dlopen, with the log callback at debug level and every error kept.
struct InProcessHost {
    LogSink sink;
    std::shared_ptr<volume_host::LoadedModule> module;
    std::unique_ptr<volume_host::DriverInstance> driver;
    std::vector<std::string> errors;

    explicit InProcessHost(const std::string &config_json) {
        const vd_host_table host{sizeof(vd_host_table), &sink, LogSink::callback};
        auto m = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
        if (!m) throw std::runtime_error(m.error().message);
        module = *m;
        auto d = volume_host::DriverInstance::create(module, config_json);
        if (!d) throw std::runtime_error(d.error().message);
        driver = std::move(*d);
    }
    const vd_driver_table &t() const { return driver->table(); }
    // connect_volume; returns device_info or "" (the error is kept).
    std::string connect(const Json::Value &ci, const std::string &dev) {
        char *out = nullptr;
        const std::string text = compact(ci);
        const std::string connector = R"({"initiator":")" + initiator + R"(","multipath":true})";
        const auto rc = t().connect_volume(driver->handle(), text.c_str(), connector.c_str(),
                                           ("{\"bus\":\"scsi\",\"dev\":\"" + dev + "\"}").c_str(), 0, &out);
        if (rc != VD_OK) {
            errors.push_back(driver->last_error());
            return {};
        }
        return volume_host::take_driver_string(t(), out);
    }
    bool disconnect(const Json::Value &ci, const std::string &device_info) {
        const std::string text = compact(ci);
        const auto rc = t().disconnect_volume(driver->handle(), text.c_str(), device_info.empty() ? nullptr : device_info.c_str(), 0);
        if (rc != VD_OK) errors.push_back(driver->last_error());
        return rc == VD_OK;
    }
    void into(Haystack &h, const std::string &name) {
        const std::lock_guard<std::mutex> lock(sink.mutex);
        std::string all;
        for (const auto &l : sink.lines) all += l + "\n";
        h.add(name + " log callback (" + std::to_string(sink.lines.size()) + " lines)", all);
        for (const auto &e : errors) h.add(name + " last_error", e);
    }
};

class LeakScan : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-leak-scan-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        inputs_ = dir_ / "inputs";  // the test's own connection_info files: the only place a password belongs
        fs::create_directories(inputs_);
        iqn_ = tgtd_.make_iqn("leak");
        tid_ = tgtd_.create_target(iqn_);
        tgtd_.add_lun(tid_, 1);
        tgtd_.add_account(chap_user, chap_password);
        tgtd_.bind_account(tid_, chap_user);
        tgtd_.add_account(discovery_user, discovery_password);
        tgtd_.bind_discovery_account(discovery_user);
        spit(inputs_ / "connector.json", R"({"initiator":")" + initiator + R"(","multipath":true})");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    Json::Value ci(const std::vector<std::string> &portals, const std::string &volume, const std::string &password,
                   bool lists = true) {
        Json::Value c;
        c["driver_volume_type"] = "iscsi";
        Json::Value &d = c["data"];
        if (lists) {
            for (const auto &p : portals) {
                d["target_portals"].append(p);
                d["target_iqns"].append(iqn_);
                d["target_luns"].append(1);
            }
        } else {
            d["target_portal"] = portals.front();
            d["target_iqn"] = iqn_;
            d["target_lun"] = 1;
        }
        d["volume_id"] = "leak-" + std::to_string(::getpid()) + "-" + volume;
        d["auth_method"] = "CHAP";
        d["auth_username"] = chap_user;
        d["auth_password"] = password;
        d["discovery_auth_method"] = "CHAP";
        d["discovery_auth_username"] = discovery_user;
        d["discovery_auth_password"] = discovery_password;
        return c;
    }
    std::string input(const std::string &name, const Json::Value &v) {
        spit(inputs_ / name, compact(v));
        return (inputs_ / name).string();
    }

    TgtdLab tgtd_;
    fs::path dir_, inputs_;
    std::string iqn_;
    int tid_ = 0;
    std::string transcript_;
};

TEST_F(LeakScan, NoPasswordInAnyLogOutputArgvOrFile) {
    Haystack h;
    const std::string p1 = tgtd_.portal().to_string();
    const std::string p2 = tgtd_.add_portal().to_string();
    const std::string dead = tgtd_.dead_portal().to_string();

    // ---- Network path: volume-host on libvirtd + QEMU + tgtd.
    LibvirtLab libvirt;
    const fs::path net_conf = dir_ / "net.conf";
    spit(net_conf, "[DEFAULT]\nvolume_drivers = iscsi=" IVD_MODULE_PATH "\n\n[libvirt]\nconnection_uri = " + libvirt.uri() +
                       "\n\n[iscsi]\npath = network\nprobe_timeout_ms = 1000\nstate_dir = " + (dir_ / "state").string() + "\n");
    const std::string net_global = "--config " + net_conf.string() + " --log-level debug";
    {
        // Success: probe three portals (one dead), attach, read the bytes through QEMU, detach.
        const std::string c = input("net-ok.json", ci({dead, p1, p2}, "net-ok", chap_password));
        auto r = run_volume_host(dir_, net_global, "connect " + c + " " + (inputs_ / "connector.json").string() +
                                                       " --attach " + libvirt.domain_name(), &transcript_);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const Json::Value info = parse(r.out);
        EXPECT_EQ(libvirt.read_disk_bytes(info["dev"].asString(), 0, 8).size(), 8u) << "QEMU logged in with the password";
        spit(dir_ / "net-ok.device.json", r.out);
        auto d = run_volume_host(dir_, net_global, "disconnect " + c + " " + (dir_ / "net-ok.device.json").string() +
                                                       " --detach " + libvirt.domain_name(), &transcript_);
        EXPECT_EQ(d.exit_code, 0) << d.err;
        // Failure: the wrong password, one portal (QEMU's login fails) and two portals (the probe fails).
        for (const auto &[name, portals] : {std::pair<std::string, std::vector<std::string>>{"net-wrong1", {p1}},
                                            {"net-wrong2", {p1, p2}}}) {
            const std::string w = input(name + ".json", ci(portals, name, wrong_password));
            auto f = run_volume_host(dir_, net_global, "connect " + w + " " + (inputs_ / "connector.json").string() +
                                                           " --attach " + libvirt.domain_name(), &transcript_);
            EXPECT_NE(f.exit_code, 0) << name;
        }
    }
    {
        // In process: the same with the log callback at debug level, plus an input error next to a password.
        InProcessHost host(R"({"path":"network","probe_timeout_ms":"1000","state_dir":")" + (dir_ / "state").string() +
                           R"(","libvirt_uri":")" + libvirt.uri() + "\"}");
        auto good = ci({dead, p1}, "net-inproc", chap_password);
        const std::string info = host.connect(good, "sdx");
        ASSERT_FALSE(info.empty()) << (host.errors.empty() ? "" : host.errors.back());
        auto session = volume_host::DomainSession::open(libvirt.uri(), libvirt.domain_name());
        ASSERT_TRUE(session);
        EXPECT_FALSE((*session)->attach_disk(parse(info)["disk_xml"].asString()).has_value());
        EXPECT_TRUE((*session)->detach_disk("sdx"));
        EXPECT_TRUE(host.disconnect(good, info));
        EXPECT_TRUE(host.connect(ci({p1, p2}, "net-inproc-wrong", wrong_password), "sdx").empty());
        auto bad = ci({p1}, "net-inproc-bad", chap_password);
        bad["data"]["target_luns"][0] = -1;
        EXPECT_TRUE(host.connect(bad, "sdx").empty());
        EXPECT_TRUE(host.disconnect(good, ""));  // no device_info
        host.into(h, "network in-process");
        EXPECT_GE(host.errors.size(), 2u);
    }
    EXPECT_TRUE(eventually([&] { return tgtd_.session_count(tid_) == 0; }));
    EXPECT_TRUE(secrets_with_prefix(libvirt.uri(), "iscsi-volume-driver:leak-" + std::to_string(::getpid())).empty());
    // libvirt's secret store on disk: nothing of ours stays after disconnect.
    add_tree(h, "/etc/libvirt/secrets");
    // The driver's attachment records (state_dir): ids and usage names only.
    ASSERT_TRUE(fs::exists(dir_ / "state" / "attachments")) << "the scenarios wrote attachment records";
    add_tree(h, (dir_ / "state").string());
    add_tree(h, "/run/libvirt/secrets");
    // libvirtd's and QEMU's logs.
    for (const char *p : {"/run/ivd-libvirt-lab/libvirtd.log", "/var/log/libvirt/libvirtd.log"}) {
        if (fs::exists(p)) h.add(p, slurp(p));
    }
    const fs::path qemu_log = fs::path("/var/log/libvirt/qemu") / (libvirt.domain_name() + ".log");
    ASSERT_TRUE(fs::exists(qemu_log)) << "the domain log is part of the scan";
    h.add(qemu_log.string(), slurp(qemu_log));
    EXPECT_NE(slurp(qemu_log).find("-object"), std::string::npos) << "the QEMU command line (with its secret objects) is logged";
    add_tree(h, libvirt.work_dir());

    // ---- Host path: the simulated host, real tgtd.
    const fs::path sim = dir_ / "sim";
    const fs::path host_conf = dir_ / "host.conf";
    spit(host_conf, "[DEFAULT]\nvolume_drivers = iscsi=" IVD_MODULE_PATH
                    "\n\n[iscsi]\nprobe_timeout_ms = 2000\ndevice_wait_timeout_ms = 5000\nmultipath_wait_timeout_ms = 2000\n");
    const std::string host_global = "--config " + host_conf.string() + " --log-level debug";
    ivd::simhost::own_sessions_of_simulated_host_tool();
    const std::string on_sim = std::string(SIMULATED_HOST_PATH) + " " + sim.string();
    {
        // Success: one portal with discovery (CHAP on the discovery session too), then the lists form.
        for (const auto &[name, value] : {std::pair<std::string, Json::Value>{"host-disc", ci({p1}, "host-disc", chap_password, false)},
                                          {"host-lists", ci({p1, p2}, "host-lists", chap_password)}}) {
            const std::string c = input(name + ".json", value);
            auto r = run_volume_host(dir_, host_global, "connect " + c + " " + (inputs_ / "connector.json").string() +
                                                            " --disk-info '{\"dev\":\"sdb\"}'", &transcript_, on_sim);
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_TRUE(parse(r.out)["multipath"].asBool()) << r.out;
            // While connected: only the node records (root's, 0600: their owner's files) hold the password, as the
            // default keeps it there for iscsid's own recovery; nothing else under the simulated host does.
            Haystack connected;
            add_tree(connected, sim, sim / "etc/iscsi/nodes");
            expect_root_only_records(sim / "etc/iscsi/nodes");
            for (const auto &hit : connected.hits()) ADD_FAILURE() << "while connected: " << hit;
            spit(dir_ / (name + ".device.json"), r.out);
            auto d = run_volume_host(dir_, host_global, "disconnect " + c + " " + (dir_ / (name + ".device.json")).string(),
                                     &transcript_, on_sim);
            EXPECT_EQ(d.exit_code, 0) << d.err;
        }
        // Failure: the wrong password (the probe refuses), and a login that fails after the node record got it.
        const std::string w = input("host-wrong.json", ci({p1, p2}, "host-wrong", wrong_password));
        EXPECT_NE(run_volume_host(dir_, host_global, "connect " + w + " " + (inputs_ / "connector.json").string(), &transcript_, on_sim).exit_code, 0);
        spit(sim / "faults" / ("login_fail_" + tgtd_.portal().host + "_" + std::to_string(tgtd_.portal().port)), "");
        const std::string f = input("host-loginfail.json", ci({p1}, "host-loginfail", chap_password));
        EXPECT_NE(run_volume_host(dir_, host_global, "connect " + f + " " + (inputs_ / "connector.json").string(), &transcript_, on_sim).exit_code, 0);
        fs::remove(sim / "faults" / ("login_fail_" + tgtd_.portal().host + "_" + std::to_string(tgtd_.portal().port)));
    }
    {
        // In process with the simulated host's keys: success, a device timeout, disconnect without device_info.
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : ivd::simhost::prepare_simulated_host(sim.string(), initiator)) config[k] = v;
        config["device_wait_timeout_ms"] = "500";
        config["multipath_wait_timeout_ms"] = "2000";
        InProcessHost host(compact(config));
        auto good = ci({p1, p2}, "host-inproc", chap_password);
        const std::string info = host.connect(good, "sdc");
        ASSERT_FALSE(info.empty()) << (host.errors.empty() ? "" : host.errors.back());
        EXPECT_TRUE(host.disconnect(good, info));
        spit(sim / "faults/device_delay_ms", "1500");
        EXPECT_TRUE(host.connect(ci({p1}, "host-inproc-late", chap_password), "sdc").empty());
        fs::remove(sim / "faults/device_delay_ms");
        EXPECT_TRUE(host.disconnect(good, ""));
        host.into(h, "host in-process");
    }
    ivd::simhost::stop_simulated_sessions(sim.string());
    EXPECT_TRUE(eventually([&] { return sim_state(sim).empty(); })) << sim_state(sim).describe();
    const std::string argv_log = slurp(sim / "argv.log");
    EXPECT_NE(argv_log.find("--login"), std::string::npos) << "the simulated host recorded the logins";
    EXPECT_NE(argv_log.find("--op new"), std::string::npos) << "node records were made (CHAP is written into them)";
    h.add("simulated argv.log", argv_log);

    // ---- Everything volume-host printed, every file under the test's directories, tgtd's log.
    h.add("volume-host stdout/stderr", transcript_);
    EXPECT_NE(transcript_.find("debug"), std::string::npos) << "volume-host ran at debug level";
    add_tree(h, dir_, inputs_);
    h.add("tgtd log", tgtd_.daemon_log());

    // The scanner itself finds a planted needle (so a clean result means something).
    Haystack control;
    control.add("control", "x" + base64(chap_password) + "y");
    control.add("control2", "pw=" + discovery_password);
    EXPECT_EQ(control.hits().size(), 2u);

    std::cout << "scanned " << h.pieces.size() << " sources, " << h.bytes() << " bytes:\n";
    for (const auto &[source, text] : h.pieces) std::cout << "  " << text.size() << "\t" << source << "\n";
    for (const auto &hit : h.hits()) ADD_FAILURE() << hit;
}

}  // namespace
