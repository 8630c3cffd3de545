// The fixture of the host path tests on the simulated host: a private tgtd (TgtdLab), a simulated host under a
// temporary directory, and a Driver pointed at it. Shared by the host_path_*_test.cpp files on the simulated host.
#pragma once

#include "test_support.hpp"
#include "driver/driver.hpp"
#include "request/driver_config.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ivd::testing::hostpath {

namespace fs = std::filesystem;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

inline constexpr const char *initiator = "iqn.2004-10.org.example:host-path-test";
inline constexpr const char *chap_user = "hpuser";
inline constexpr const char *chap_password = "Hp-Secret-0x5eC7";

inline constexpr auto &parse = ivd::testing::parse_json;

inline constexpr auto &write = ivd::testing::write_json;

using ivd::testing::slurp;

inline std::size_t count_entries(const fs::path &p) {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
}

// The failed_portals rows inside an error message ("...: [{...}, ...]").
inline Json::Value rows_in(const std::string &message) {
    const auto at = message.find('[');
    if (at == std::string::npos) return Json::Value(Json::arrayValue);
    return parse(message.substr(at));
}

class HostPathTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-host-path-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        sim_config_ = ivd::simhost::prepare_simulated_host(dir_, initiator);
    }
    void TearDown() override {
        driver_.reset();
        ivd::simhost::stop_simulated_sessions(dir_);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    ivd::Driver &driver(const std::map<std::string, std::string> &extra = {}) {
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : sim_config_) config[k] = v;
        config["device_wait_timeout_ms"] = "5000";
        config["multipath_wait_timeout_ms"] = "3000";
        for (const auto &[k, v] : extra) config[k] = v;
        ivd::DriverParts parts;
        ivd::HostFacts facts;
        facts.capabilities.host_iscsi = true;
        facts.capabilities.multipath = true;
        facts.initiator = initiator;
        parts.facts = facts;
        auto d = ivd::Driver::create(write(config).c_str(), ivd::Logger(&HostPathTest::capture_log, &logs_), std::move(parts));
        EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
        driver_ = std::move(d).value();
        return *driver_;
    }

    static std::string connector(bool multipath = true) {
        Json::Value c(Json::objectValue);
        c["initiator"] = initiator;
        c["host"] = "compute-1";
        c["ip"] = "127.0.0.1";
        c["multipath"] = multipath;
        return write(c);
    }

    static Json::Value lists(const std::vector<TgtdPortal> &portals, const std::vector<std::string> &iqns,
                             const std::vector<int> &luns, bool chap = false) {
        Json::Value ci(Json::objectValue);
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        for (const auto &p : portals) d["target_portals"].append(p.to_string());
        for (const auto &q : iqns) d["target_iqns"].append(q);
        for (int l : luns) d["target_luns"].append(l);
        d["volume_id"] = "vol-1";
        if (chap) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = chap_password;
        }
        return ci;
    }

    ivd::Result<Json::Value> connect(const Json::Value &ci, bool multipath = true) {
        auto r = driver_->connect_volume(write(ci).c_str(), connector(multipath).c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        if (!r) return r.error();
        return parse(*r);
    }

    ivd::Result<void> disconnect(const Json::Value &ci, const Json::Value &info, std::uint32_t flags = 0) {
        return driver_->disconnect_volume(write(ci).c_str(), write(info).c_str(), flags);
    }

    std::string argv_log() const { return slurp(dir_ / "argv.log"); }
    // The driver's log lines so far, one a line.
    std::string log_text() const {
        const std::lock_guard<std::mutex> lock(logs_.mutex);
        return logs_.text;
    }
    void set_fault(const std::string &name, const std::string &value = "") {
        std::ofstream(dir_ / "faults" / name) << value;
    }
    std::size_t sessions() const { return count_entries(dir_ / "sys/class/iscsi_session"); }
    std::size_t node_records() const { return count_entries(dir_ / "etc/iscsi/nodes"); }

    // One target with LUN 1 reachable through `n` portals of the lab.
    std::vector<TgtdPortal> portals(std::size_t n) {
        while (lab_.portals().size() < n) lab_.add_portal();
        return {lab_.portals().begin(), lab_.portals().begin() + static_cast<long>(n)};
    }

    // The driver may log from its path threads.
    struct Logs {
        mutable std::mutex mutex;
        std::string text;
    };
    static void capture_log(void *user, std::int32_t, const char *component, const char *message) {
        auto *logs = static_cast<Logs *>(user);
        const std::lock_guard<std::mutex> lock(logs->mutex);
        logs->text += std::string(component ? component : "-") + ": " + (message ? message : "") + "\n";
    }

    TgtdLab lab_;
    fs::path dir_;
    std::map<std::string, std::string> sim_config_;
    Logs logs_;  // before driver_: the driver logs until it is destroyed
    std::unique_ptr<ivd::Driver> driver_;
};

}  // namespace ivd::testing::hostpath
