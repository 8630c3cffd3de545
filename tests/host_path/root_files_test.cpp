// What the host path writes as root (lock files, node records with the CHAP password) on the simulated host with
// a real tgtd: never through a symlink another user could plant, never in a directory someone else owns or can
// write, and a node record ends up as the CHAP record policy promises (by default it keeps the password, 0600 and
// root's; with scrub_chap_from_node_record it holds none) even after a crash (reconnect, cleanup).
#include "test_support.hpp"
#include "driver/driver.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

constexpr const char *initiator = "iqn.2004-10.org.example:root-files-test";
constexpr const char *chap_user = "rfuser";
constexpr const char *chap_password = "Rf-Secret-0x9aB3";
constexpr auto &parse = ivd::testing::parse_json;
constexpr auto &write = ivd::testing::write_json;

// A cleanup report without the crash journal's attachments (kept: a domain uses them), for the node record checks.
Json::Value node_records_report(const std::string &text) {
    Json::Value report = parse(text);
    Json::Value items(Json::arrayValue);
    for (const Json::Value &item : report["items"]) {
        if (item["kind"].asString() == "host_attachment") {
            EXPECT_EQ(item["action"].asString(), "kept") << text;
            report["found"] = report["found"].asInt() - 1;
            report["kept"] = report["kept"].asInt() - 1;
        } else {
            items.append(item);
        }
    }
    report["items"] = items;
    return report;
}

// The network path stays out of these tests (and out of the shared libvirtd): cleanup reports it "not scanned".
class NoNetworkPath final : public ivd::AttachPathImpl {
public:
    ivd::Result<ivd::request::DeviceInfo> connect(const ivd::ConnectContext &) override {
        return ivd::make_error(ivd::Status::not_implemented, "no network path in this test");
    }
    ivd::Result<void> disconnect(const ivd::request::VolumeRequest &, const ivd::request::DeviceInfo *, ivd::DisconnectOptions) override {
        return ivd::make_error(ivd::Status::not_implemented, "no network path in this test");
    }
};

class RootFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-root-files-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        sim_config_ = ivd::simhost::prepare_simulated_host(dir_, initiator);
        iqn_ = lab_.make_iqn("rootfiles");
        tid_ = lab_.create_target(iqn_);
        lab_.add_lun(tid_, 1);
        lab_.add_account(chap_user, chap_password);
        lab_.bind_account(tid_, chap_user);
        while (lab_.portals().size() < 2) lab_.add_portal();
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
        parts.network = std::make_unique<NoNetworkPath>();
        // A domain uses every map the test attached: the crash journal's attachments are kept (and reported).
        parts.domain_block_devices = [dev = dir_ / "dev"]() -> ivd::Result<std::vector<std::string>> {
            std::vector<std::string> maps;
            for (const auto &e : fs::directory_iterator(dev)) {
                if (e.path().filename().string().rfind("dm-", 0) == 0) maps.push_back(e.path().string());
            }
            return maps;
        };
        driver_.reset();
        auto d = ivd::Driver::create(write(config).c_str(), {}, std::move(parts));
        EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
        driver_ = std::move(d).value();
        return *driver_;
    }

    // Both portals of the target, with CHAP.
    Json::Value ci() const {
        Json::Value c(Json::objectValue);
        c["driver_volume_type"] = "iscsi";
        Json::Value &d = c["data"];
        for (std::size_t i = 0; i < 2; ++i) {
            d["target_portals"].append(lab_.portals()[i].to_string());
            d["target_iqns"].append(iqn_);
            d["target_luns"].append(1);
        }
        d["volume_id"] = "vol-root-files";
        d["auth_method"] = "CHAP";
        d["auth_username"] = chap_user;
        d["auth_password"] = chap_password;
        return c;
    }

    ivd::Result<Json::Value> connect() {
        const std::string connector = std::string(R"({"initiator":")") + initiator + R"(","multipath":true})";
        auto r = driver_->connect_volume(write(ci()).c_str(), connector.c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        if (!r) return r.error();
        return parse(*r);
    }

    fs::path record(std::size_t portal) const {
        const TgtdPortal &p = lab_.portals()[portal];
        return dir_ / "etc/iscsi/nodes" / iqn_ / (p.host + "," + std::to_string(p.port));
    }
    fs::path lock_file(std::size_t portal) const {
        std::string name = lab_.portals()[portal].to_string() + "_" + iqn_;
        for (char &ch : name) {
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
        }
        return dir_ / "lock" / (name + ".lock");
    }
    // The state a crash between login and the password's removal leaves: the password in the record.
    void plant_password(const fs::path &rec) const {
        std::string text = slurp(rec);
        const auto end = text.find("# END RECORD");
        ASSERT_NE(end, std::string::npos) << text;
        text.insert(end, std::string("node.session.auth.password = ") + chap_password + "\n");
        std::ofstream(rec, std::ios::trunc) << text;
    }
    bool holds_password(const fs::path &rec) const { return slurp(rec).find(chap_password) != std::string::npos; }
    std::size_t sessions() const {
        std::size_t n = 0;
        std::error_code ec;
        for (fs::directory_iterator it(dir_ / "sys/class/iscsi_session", ec), end; !ec && it != end; it.increment(ec)) ++n;
        return n;
    }
    // An unsafe lock_dir is refused before anything is done, as a config error naming it.
    void expect_lock_dir_refused(const std::string &why) {
        driver();
        auto info = connect();
        ASSERT_FALSE(info.ok()) << why;
        EXPECT_EQ(info.error().status, ivd::Status::config) << why << ": " << info.error().message;
        EXPECT_EQ(info.error().field, "lock_dir") << why << ": " << info.error().message;
        EXPECT_NE(info.error().message.find("lock_dir"), std::string::npos) << info.error().message;
        EXPECT_NE(info.error().message.find(why), std::string::npos) << info.error().message;
        EXPECT_FALSE(fs::exists(dir_ / "argv.log")) << "nothing may run: " << slurp(dir_ / "argv.log");
        EXPECT_EQ(sessions(), 0u);
    }

    TgtdLab lab_;
    fs::path dir_;
    std::string iqn_;
    int tid_ = 0;
    std::map<std::string, std::string> sim_config_;
    std::unique_ptr<ivd::Driver> driver_;
};

TEST_F(RootFilesTest, DefaultLockDirIsRootsOwnNotRunLock) {
    EXPECT_EQ(ivd::request::DriverConfig{}.lock_dir.rfind("/run/lock/", 0), std::string::npos)
        << "/run/lock is world-writable: " << ivd::request::DriverConfig{}.lock_dir;
}

TEST_F(RootFilesTest, LockDirPlantedAsSymlinkIsRefusedAndItsTargetUntouched) {
    const fs::path elsewhere = dir_ / "elsewhere";
    fs::create_directories(elsewhere);
    fs::remove(dir_ / "lock");
    fs::create_directory_symlink(elsewhere, dir_ / "lock");
    expect_lock_dir_refused("symlink");
    EXPECT_TRUE(fs::is_empty(elsewhere)) << "a lock file was created through the symlink";
    EXPECT_TRUE(fs::is_symlink(dir_ / "lock"));
}

TEST_F(RootFilesTest, LockDirWritableByOthersIsRefused) {
    ASSERT_EQ(::chmod((dir_ / "lock").c_str(), 01777), 0);
    expect_lock_dir_refused("writable by group or others");
    EXPECT_TRUE(fs::is_empty(dir_ / "lock"));
}

TEST_F(RootFilesTest, LockDirOwnedByAnotherUserIsRefused) {
    ASSERT_EQ(::geteuid(), 0u) << "the host path tests run as root";
    ASSERT_EQ(::chown((dir_ / "lock").c_str(), 65534, 65534), 0);
    expect_lock_dir_refused("owned by uid 65534");
    EXPECT_TRUE(fs::is_empty(dir_ / "lock"));
}

TEST_F(RootFilesTest, LockFilePlantedAsSymlinkIsRefusedAndTheVictimUntouched) {
    const fs::path victim = dir_ / "victim";  // does not exist: following the link would create it
    fs::create_symlink(victim, lock_file(0));
    driver();
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;  // the other portal's path still attaches
    ASSERT_EQ((*info)["paths"].size(), 1u) << write(*info);
    EXPECT_EQ((*info)["paths"][0]["portal"].asString(), lab_.portals()[1].to_string());
    ASSERT_EQ((*info)["failed_portals"].size(), 1u) << write(*info);
    const std::string detail = (*info)["failed_portals"][0]["detail"].asString();
    EXPECT_NE(detail.find("symlink"), std::string::npos) << detail;
    EXPECT_FALSE(fs::exists(victim)) << "the lock was opened through the symlink";
    EXPECT_TRUE(fs::is_symlink(lock_file(0)));
    EXPECT_EQ(slurp(dir_ / "argv.log").find("-p " + lab_.portals()[0].to_string() + " "), std::string::npos)
        << "nothing may run for the portal whose lock was refused";
}

TEST_F(RootFilesTest, NodeRecordPlantedAsSymlinkIsNeverWrittenThrough) {
    const fs::path victim = dir_ / "victim-record";
    const std::string original = "node.name = " + iqn_ + "\nnode.session.auth.authmethod = None\n# END RECORD\n";
    std::ofstream(victim) << original;
    fs::create_directories(record(0).parent_path());
    fs::create_symlink(victim, record(0));
    driver();  // by default a password written stays
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 1u) << write(*info);
    ASSERT_EQ((*info)["failed_portals"].size(), 1u) << write(*info);
    const std::string detail = (*info)["failed_portals"][0]["detail"].asString();
    EXPECT_NE(detail.find("symlink"), std::string::npos) << detail;
    EXPECT_NE(detail.find("iscsi_node_dir"), std::string::npos) << detail;
    EXPECT_EQ(slurp(victim), original);
    EXPECT_TRUE(fs::is_symlink(record(0))) << "the planted record was replaced or written";
    std::istringstream argv(slurp(dir_ / "argv.log"));
    for (std::string line; std::getline(argv, line);) {
        const bool on_it = line.find("-p " + lab_.portals()[0].to_string() + " ") != std::string::npos;
        EXPECT_FALSE(on_it && line.find("--op") != std::string::npos)
            << "iscsiadm may not change an unsafe record either (it follows symlinks): " << line;
    }
    EXPECT_TRUE(holds_password(record(1))) << "the default keeps it in the good record";
}

TEST_F(RootFilesTest, IqnDirectoryPlantedAsSymlinkIsNeverWrittenThrough) {
    const fs::path elsewhere = dir_ / "elsewhere";
    fs::create_directories(elsewhere);
    fs::create_directory_symlink(elsewhere, dir_ / "etc/iscsi/nodes" / iqn_);
    driver();
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_NE(info.error().message.find("iscsi_node_dir"), std::string::npos) << info.error().message;
    EXPECT_TRUE(fs::is_empty(elsewhere)) << "a record was created through the symlink";
    EXPECT_EQ(sessions(), 0u);
}

// Recovery by default: the record keeps the password so iscsid can log in again after its own restart, and it is
// written as root's own file: 0600 (even over a stale temporary file another mode left), one link, renamed into
// place (no temporary file stays), never on a command line; cleanup leaves it; disconnect deletes the record.
TEST_F(RootFilesTest, DefaultKeepsThePasswordInARootOnlyRecordWrittenAtomically) {
    fs::create_directories(record(0).parent_path());
    const fs::path stale = record(0).parent_path() / ("." + record(0).filename().string() + ".tmp");
    std::ofstream(stale) << "stale";
    ASSERT_EQ(::chmod(stale.c_str(), 0644), 0);
    driver();
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 2u) << write(*info);
    for (std::size_t i = 0; i < 2; ++i) {
        struct stat st {};
        ASSERT_EQ(::lstat(record(i).c_str(), &st), 0) << record(i);
        EXPECT_TRUE(S_ISREG(st.st_mode)) << record(i);
        EXPECT_EQ(st.st_mode & 07777, 0600u) << record(i);
        EXPECT_EQ(st.st_uid, 0u) << record(i);
        EXPECT_EQ(st.st_nlink, 1u) << record(i);
        EXPECT_TRUE(holds_password(record(i))) << slurp(record(i));
        for (const auto &e : fs::directory_iterator(record(i).parent_path())) {
            EXPECT_NE(e.path().filename().string().front(), '.') << "a temporary file stayed: " << e.path();
        }
    }
    EXPECT_EQ(slurp(dir_ / "argv.log").find(chap_password), std::string::npos) << "the password went through argv";
    auto run = driver_->cleanup(0);
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_EQ(node_records_report(*run)["found"].asInt(), 0) << *run;
    EXPECT_TRUE(holds_password(record(0))) << "cleanup keeps what the default policy keeps";
    ASSERT_TRUE(driver_->disconnect_volume(write(ci()).c_str(), write(*info).c_str(), 0).ok());
    EXPECT_FALSE(fs::exists(record(0)));
    EXPECT_FALSE(fs::exists(record(1)));
}

// Scrubbing is an opt-in, under its new name and under the old key with its old meaning (an operator's explicit
// keep_chap_in_node_record = false still scrubs).
TEST_F(RootFilesTest, ScrubOptInAndTheOldKeyRemoveThePasswordAfterLogin) {
    for (const auto &[key, value] : {std::pair<std::string, std::string>{"scrub_chap_from_node_record", "true"},
                                     {"keep_chap_in_node_record", "false"}}) {
        driver({{key, value}});
        auto info = connect();
        ASSERT_TRUE(info.ok()) << key << ": " << info.error().message;
        ASSERT_EQ((*info)["paths"].size(), 2u) << write(*info);
        for (std::size_t i = 0; i < 2; ++i) {
            EXPECT_FALSE(holds_password(record(i))) << key << ": " << slurp(record(i));
            EXPECT_NE(slurp(record(i)).find("node.session.auth.username = rfuser"), std::string::npos) << key;
        }
        EXPECT_EQ(lab_.session_count(tid_), 2) << "the sessions keep the credentials";
        ASSERT_TRUE(driver_->disconnect_volume(write(ci()).c_str(), write(*info).c_str(), 0).ok()) << key;
    }
}

TEST_F(RootFilesTest, ReconnectScrubsAPasswordACrashLeftInTheRecord) {
    driver({{"scrub_chap_from_node_record", "true"}});
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 2u) << write(*info);
    ASSERT_FALSE(holds_password(record(0)));
    plant_password(record(0));
    plant_password(record(1));

    auto again = connect();  // finds both sessions: no login of its own
    ASSERT_TRUE(again.ok()) << again.error().message;
    for (std::size_t i = 0; i < 2; ++i) {
        const std::string text = slurp(record(i));
        EXPECT_FALSE(holds_password(record(i))) << record(i);
        EXPECT_EQ(text.find("node.session.auth.password"), std::string::npos) << text;
        EXPECT_NE(text.find("node.session.auth.username = rfuser"), std::string::npos) << text;
        EXPECT_EQ(fs::status(record(i)).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    }
    EXPECT_EQ(lab_.session_count(tid_), 2);
    ASSERT_TRUE(driver_->disconnect_volume(write(ci()).c_str(), write(*info).c_str(), 0).ok());
}

TEST_F(RootFilesTest, ReconnectKeepsThePasswordWhenThePolicyKeepsIt) {
    driver();  // the default
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_TRUE(holds_password(record(0)));
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(holds_password(record(0)));
    EXPECT_EQ(fs::status(record(0)).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST_F(RootFilesTest, CleanupScrubsPasswordsThePolicyForbidsAndDryRunOnlyReports) {
    driver({{"scrub_chap_from_node_record", "true"}});
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    plant_password(record(1));
    const std::string name = iqn_ + "/" + record(1).filename().string();

    auto dry = driver_->cleanup(VD_CLEANUP_DRY_RUN);
    ASSERT_TRUE(dry.ok()) << dry.error().message;
    EXPECT_EQ(dry->find(chap_password), std::string::npos) << "the report names records, never passwords";
    Json::Value report = node_records_report(*dry);
    EXPECT_EQ(report["paths"]["host"].asString(), "scanned") << *dry;
    ASSERT_EQ(report["items"].size(), 1u) << *dry;
    EXPECT_EQ(report["items"][0]["path"].asString(), "host");
    EXPECT_EQ(report["items"][0]["kind"].asString(), "node_record_password");
    EXPECT_EQ(report["items"][0]["name"].asString(), name);
    EXPECT_EQ(report["items"][0]["action"].asString(), "would_remove");
    EXPECT_EQ(report["items"][0]["record"].asString(), record(1).string());
    EXPECT_TRUE(holds_password(record(1))) << "a dry run changes nothing";

    auto run = driver_->cleanup(0);
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_EQ(run->find(chap_password), std::string::npos);
    report = node_records_report(*run);
    EXPECT_EQ(report["removed"].asInt(), 1) << *run;
    EXPECT_EQ(report["failed"].asInt(), 0) << *run;
    ASSERT_EQ(report["items"].size(), 1u) << *run;
    EXPECT_EQ(report["items"][0]["action"].asString(), "removed");
    EXPECT_FALSE(holds_password(record(1)));
    EXPECT_NE(slurp(record(1)).find("node.session.auth.username = rfuser"), std::string::npos) << "only the password goes";

    auto again = driver_->cleanup(0);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(node_records_report(*again)["found"].asInt(), 0) << *again;

    // By default the password is where the policy wants it: nothing to clean.
    plant_password(record(1));
    driver();
    auto kept = driver_->cleanup(0);
    ASSERT_TRUE(kept.ok()) << kept.error().message;
    EXPECT_EQ(node_records_report(*kept)["found"].asInt(), 0) << *kept;
    EXPECT_TRUE(holds_password(record(1)));
    ASSERT_TRUE(driver_->disconnect_volume(write(ci()).c_str(), write(*info).c_str(), 0).ok());
}

TEST_F(RootFilesTest, CleanupReportsAnUnsafeRecordWithoutTouchingIt) {
    const fs::path victim = dir_ / "victim-record";
    const std::string original = std::string("node.session.auth.password = ") + chap_password + "\n";
    std::ofstream(victim) << original;
    fs::create_directories(record(0).parent_path());
    fs::create_symlink(victim, record(0));
    driver();
    auto run = driver_->cleanup(0);
    ASSERT_TRUE(run.ok()) << run.error().message;
    const Json::Value report = node_records_report(*run);
    ASSERT_EQ(report["items"].size(), 1u) << *run;
    EXPECT_EQ(report["items"][0]["kind"].asString(), "node_record");
    EXPECT_EQ(report["items"][0]["action"].asString(), "reported");
    EXPECT_NE(report["items"][0]["reason"].asString().find("symlink"), std::string::npos) << *run;
    EXPECT_EQ(slurp(victim), original);
    EXPECT_TRUE(fs::is_symlink(record(0)));
}

}  // namespace
