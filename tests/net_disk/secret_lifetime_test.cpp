// Who keeps a volume's CHAP secret alive: attachment records and domain disk references, with libvirt replaced
// by MemorySecretStore and a scripted reference list, and the real FileLedger in a private temporary state_dir.
#include "net_disk/network_disk_path.hpp"
#include "path_calls.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace {

using namespace ivd;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string usage = "iscsi-volume-driver:vol-7";
const std::string password = "Pw-lifetime-9d2e";

request::VolumeRequest chap_volume() {
    const std::string text =
        R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:3260","target_iqn":"iqn.2010-10.org.openstack:v","target_lun":1,"volume_id":"vol-7","auth_method":"CHAP","auth_username":"u","auth_password":")" +
            password + "\"}}";
    auto doc = request::parse_object(text.c_str(), "connection_info");
    EXPECT_TRUE(doc.ok());
    auto r = request::parse_connection_info(*doc);
    EXPECT_TRUE(r.ok());
    return std::move(r).value();
}

// A fresh 0700 state directory per test, removed afterwards.
struct StateDir {
    fs::path root;
    StateDir() {
        std::string tmpl = (fs::temp_directory_path() / "ivd-state-XXXXXX").string();
        EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
        root = tmpl;
    }
    ~StateDir() { fs::remove_all(root); }
    std::string dir() const { return (root / "state").string(); }
};

// The real FileLedger, with its calls counted: attachments, add, add_to_found_secret and remove each read the
// record file once; clear deletes it unread.
class CountingLedger final : public net_disk::AttachmentLedger {
public:
    struct Calls {
        std::atomic<int> attachments{0}, add{0}, remove{0}, clear{0};
        int record_reads() const { return attachments + add + remove; }  // add counts add_to_found_secret too
        void reset() { attachments = add = remove = clear = 0; }
    };
    CountingLedger(std::string state_dir, std::chrono::milliseconds lock_timeout, Calls &calls)
        : file_(std::move(state_dir), lock_timeout), calls_(calls) {}
    Result<std::unique_ptr<net_disk::LedgerLock>> lock(const std::string &usage) override { return file_.lock(usage); }
    Result<std::set<std::string>> attachments(const std::string &usage) override {
        ++calls_.attachments;
        return file_.attachments(usage);
    }
    Result<void> add(const std::string &usage, const std::string &id) override {
        ++calls_.add;
        return file_.add(usage, id);
    }
    Result<void> add_to_found_secret(const std::string &usage, const std::string &id) override {
        ++calls_.add;
        return file_.add_to_found_secret(usage, id);
    }
    Result<void> remove(const std::string &usage, const std::string &id) override {
        ++calls_.remove;
        return file_.remove(usage, id);
    }
    Result<void> clear(const std::string &usage) override {
        ++calls_.clear;
        return file_.clear(usage);
    }
    Result<std::vector<std::string>> usages() override { return file_.usages(); }

private:
    net_disk::FileLedger file_;
    Calls &calls_;
};

struct Host {
    std::shared_ptr<libvirt::MemorySecretStore> secrets = std::make_shared<libvirt::MemorySecretStore>();
    std::vector<libvirt::SecretReference> refs;
    std::mutex refs_mutex;
    std::atomic<int> domain_reads{0};  // calls of the reference lister: each reads every domain's XML
    CountingLedger::Calls ledger_calls;  // of every path's ledger
    StateDir state;

    // One NetworkDiskPath per "process": each has its own (counted) FileLedger on the same state_dir, as
    // separate volume-host processes would.
    std::unique_ptr<net_disk::NetworkDiskPath> path(std::chrono::milliseconds lock_timeout = 30s) {
        request::NetDiskConfig config;
        auto prober = [](const std::vector<request::Target> &t, const iscsi::ProbeOptions &) {
            std::vector<iscsi::ProbeResult> results(t.size());  // every portal healthy (a single one is probed too)
            for (auto &r : results) r.outcome = iscsi::ProbeOutcome::healthy;
            return results;
        };
        auto lister = [this]() -> Result<std::vector<libvirt::SecretReference>> {
            const std::lock_guard<std::mutex> g(refs_mutex);
            ++domain_reads;
            return refs;
        };
        return std::make_unique<net_disk::NetworkDiskPath>(
            config, Logger{}, secrets, prober, lister,
            std::make_shared<CountingLedger>(state.dir(), lock_timeout, ledger_calls));
    }
    bool has_secret() { return secrets->value_of(usage).has_value(); }
};

using ivd::testing::disconnect_json;

Result<json::Value> connect(net_disk::NetworkDiskPath &path, const request::VolumeRequest &v, const char *dev = "sda") {
    request::Connector connector;
    connector.initiator = "iqn.1993-08.org.debian:01:host";
    request::DiskTarget disk{request::DiskBus::scsi, dev};
    PathDecision decision;
    static const HostFacts facts;
    auto info = path.connect(ConnectContext{v, connector, disk, decision, facts});
    if (!info) return std::move(info).error();
    return info->to_json();
}

// Every test: a fresh host, the CHAP volume, and one path (a test wanting more "processes" asks host.path()).
class SecretLifetime : public ::testing::Test {
protected:
    // Connects the volume through `path`; `info` gets its device_info. ASSERT_TRUE it: a failure names the error.
    ::testing::AssertionResult connect_once(json::Value &info, const char *dev = "sda") {
        auto r = connect(*path, v, dev);
        if (!r) return ::testing::AssertionFailure() << "connect: " << r.error().message;
        info = std::move(r).value();
        return ::testing::AssertionSuccess();
    }

    Host host;
    const request::VolumeRequest v = chap_volume();
    std::unique_ptr<net_disk::NetworkDiskPath> path = host.path();
};

TEST_F(SecretLifetime, RollbackOfASecondConnectKeepsTheFirstAttachmentsSecret) {
    json::Value first, second;
    ASSERT_TRUE(connect_once(first));
    ASSERT_TRUE(connect_once(second, "sdb"));
    EXPECT_NE(first["attachment_id"].as_string(), second["attachment_id"].as_string());
    // The host could not attach the second disk ("target sda already exists") and disconnects it again.
    ASSERT_TRUE(disconnect_json(*path, v, &second, 0).ok());
    ASSERT_TRUE(host.has_secret()) << "the first, live attachment lost its secret";
    EXPECT_EQ(host.secrets->value_of(usage)->reveal(), password);
    ASSERT_TRUE(disconnect_json(*path, v, &first, 0).ok());
    EXPECT_FALSE(host.has_secret());
}

TEST_F(SecretLifetime, MultiattachDetachFromOneKeepsTheOthersSecret) {
    auto a = host.path();
    auto b = host.path();
    auto on_a = connect(*a, v);
    auto on_b = connect(*b, v);
    ASSERT_TRUE(on_a.ok() && on_b.ok());
    // Detached from dom-a; dom-b's record keeps the secret.
    ASSERT_TRUE(disconnect_json(*a, v, &*on_a, 0).ok());
    EXPECT_TRUE(host.has_secret());
    ASSERT_TRUE(disconnect_json(*b, v, &*on_b, 0).ok());
    EXPECT_FALSE(host.has_secret());
    // The records decided: which domain still had the disk was never asked.
    EXPECT_EQ(host.domain_reads.load(), 0);
}

TEST_F(SecretLifetime, RecordsAloneDecideForASecretThisDriverDefined) {
    json::Value first, second;
    ASSERT_TRUE(connect_once(first));
    ASSERT_TRUE(connect_once(second, "sdb"));
    ASSERT_TRUE(disconnect_json(*path, v, &second, 0).ok());
    EXPECT_TRUE(host.has_secret());
    ASSERT_TRUE(disconnect_json(*path, v, &first, 0).ok());
    EXPECT_FALSE(host.has_secret());
    // Neither connects nor disconnects read the domains: their cost does not grow with the host's guests.
    EXPECT_EQ(host.domain_reads.load(), 0);
}

// The disconnect that removes the secret decides on one read of the record file and then deletes it: no
// further read to drop the attachment's own record or the unrecorded-users mark.
TEST_F(SecretLifetime, ADisconnectThatRemovesTheSecretReadsTheRecordsOnce) {
    json::Value info;
    ASSERT_TRUE(connect_once(info));
    host.ledger_calls.reset();
    ASSERT_TRUE(disconnect_json(*path, v, &info, 0).ok());
    EXPECT_FALSE(host.has_secret());
    EXPECT_EQ(host.ledger_calls.record_reads(), 1);
    EXPECT_EQ(host.ledger_calls.clear.load(), 1);
    EXPECT_TRUE(fs::is_empty(fs::path(host.state.dir()) / "attachments"));
}

// A connect reads the records once: when it defines the secret, when it finds it recorded, and when it finds it
// with no record (the unrecorded-users mark goes in the same write as its own record).
TEST_F(SecretLifetime, AConnectReadsTheRecordsOnce) {
    json::Value first, second, third;
    ASSERT_TRUE(connect_once(first));
    EXPECT_EQ(host.ledger_calls.record_reads(), 1);
    host.ledger_calls.reset();
    ASSERT_TRUE(connect_once(second, "sdb"));
    EXPECT_EQ(host.ledger_calls.record_reads(), 1);
    net_disk::FileLedger ledger(host.state.dir(), 30s);
    {
        auto held = ledger.lock(usage);
        ASSERT_TRUE(held.ok());
        ASSERT_TRUE(ledger.clear(usage).ok());  // the records were lost
    }
    host.ledger_calls.reset();
    ASSERT_TRUE(connect_once(third, "sdc"));
    EXPECT_EQ(host.ledger_calls.record_reads(), 1);
    auto ids = ledger.attachments(usage);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, (std::set<std::string>{std::string(net_disk::unrecorded_users_id),
                                           third["attachment_id"].as_string()}));
}

// Both ledgers: a found secret is marked only when it has no record yet.
TEST_F(SecretLifetime, LedgersMarkAFoundSecretOnlyWithoutRecords) {
    const std::string mark(net_disk::unrecorded_users_id), a(32, 'a'), b(32, 'b'), c(32, 'c');
    net_disk::MemoryLedger memory;
    net_disk::FileLedger file(host.state.dir(), 30s);
    for (net_disk::AttachmentLedger *ledger : std::initializer_list<net_disk::AttachmentLedger *>{&memory, &file}) {
        auto held = ledger->lock(usage);
        ASSERT_TRUE(held.ok());
        ASSERT_TRUE(ledger->add_to_found_secret(usage, a).ok());
        ASSERT_TRUE(ledger->add_to_found_secret(usage, b).ok());
        EXPECT_EQ(*ledger->attachments(usage), (std::set<std::string>{mark, a, b}));
        ASSERT_TRUE(ledger->clear(usage).ok());
        ASSERT_TRUE(ledger->add(usage, a).ok());
        ASSERT_TRUE(ledger->add_to_found_secret(usage, c).ok());
        EXPECT_EQ(*ledger->attachments(usage), (std::set<std::string>{a, c}));
    }
}

TEST_F(SecretLifetime, ASecretWithoutRecordsIsKeptWhileADomainDiskReferencesIt) {
    // An attachment of a driver before records: its secret is defined, a stopped persistent domain's disk
    // names it by UUID, and no record exists.
    auto uuid = host.secrets->put_iscsi_secret(usage, "old driver", SecretString(password));
    ASSERT_TRUE(uuid.ok());
    host.refs = {{"old-dom", "config", "sdc", "", *uuid}};
    json::Value info;
    ASSERT_TRUE(connect_once(info));
    ASSERT_TRUE(disconnect_json(*path, v, &info, 0).ok());
    EXPECT_TRUE(host.has_secret()) << "the old attachment's domain lost its secret";
    EXPECT_EQ(host.domain_reads.load(), 1);
    // A device_info carrying the reserved id is one without an id: it cannot drop the mark.
    json::Value forged = info;
    forged["attachment_id"] = std::string(net_disk::unrecorded_users_id);
    ASSERT_TRUE(disconnect_json(*path, v, &forged, 0).ok());
    EXPECT_TRUE(host.has_secret());
    // The domain lets go; the next attachment's disconnect finds no disk and removes the secret and the mark.
    host.refs.clear();
    json::Value again;
    ASSERT_TRUE(connect_once(again));
    host.ledger_calls.reset();
    ASSERT_TRUE(disconnect_json(*path, v, &again, 0).ok());
    EXPECT_FALSE(host.has_secret());
    EXPECT_EQ(host.ledger_calls.record_reads(), 1) << "the record and the mark go in one deletion, unread";
    EXPECT_TRUE(fs::is_empty(fs::path(host.state.dir()) / "attachments")) << "the unrecorded-users mark was left";
    // From then on records decide alone.
    const int reads = host.domain_reads.load();
    json::Value fresh;
    ASSERT_TRUE(connect_once(fresh));
    ASSERT_TRUE(disconnect_json(*path, v, &fresh, 0).ok());
    EXPECT_EQ(host.domain_reads.load(), reads);
}

TEST_F(SecretLifetime, ADeviceInfoWithoutAnAttachmentIdIsDecidedByTheDomains) {
    json::Value v1;
    ASSERT_TRUE(connect_once(v1));
    v1.remove("attachment_id");  // a device_info of an older driver still disconnects
    net_disk::FileLedger ledger(host.state.dir(), 30s);
    {
        auto held = ledger.lock(usage);
        ASSERT_TRUE(held.ok());
        ASSERT_TRUE(ledger.clear(usage).ok());  // as for an attachment of a driver before records
    }
    host.refs = {{"old-dom", "live", "sdc", usage, ""}};
    ASSERT_TRUE(disconnect_json(*path, v, &v1, 0).ok());
    EXPECT_TRUE(host.has_secret());
    EXPECT_EQ(host.domain_reads.load(), 1);
    host.refs.clear();
    ASSERT_TRUE(disconnect_json(*path, v, &v1, 0).ok());
    EXPECT_FALSE(host.has_secret());
}

TEST_F(SecretLifetime, AFailedConnectRemovesOnlyWhatItCreated) {
    auto ledger = std::make_shared<net_disk::FileLedger>(host.state.dir(), 30s);
    net_disk::SecretLifetime lifetime(host.secrets, ledger, [] { return Result<std::vector<libvirt::SecretReference>>(std::vector<libvirt::SecretReference>{}); }, Logger{});
    auto first = lifetime.acquire(usage, "d", SecretString(password));
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(first->created);
    auto second = lifetime.acquire(usage, "d", SecretString(password));
    ASSERT_TRUE(second.ok());
    EXPECT_FALSE(second->created);
    ASSERT_TRUE(lifetime.undo(*second).ok());
    EXPECT_TRUE(host.has_secret()) << "the second connect did not create the secret";
    EXPECT_EQ(ledger->attachments(usage)->size(), 1u);
    ASSERT_TRUE(lifetime.undo(*first).ok());
    EXPECT_FALSE(host.has_secret());
    EXPECT_TRUE(ledger->attachments(usage)->empty());
}

// Many connects and disconnects of one volume at once, each through its own path (as separate processes):
// no attachment ever finds its secret gone before its own disconnect, and none is left afterwards.
TEST_F(SecretLifetime, ParallelConnectsNeverLoseTheSecretEarly) {
    std::atomic<int> lost{0}, failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 20; ++i) {
        threads.emplace_back([&, i] {
            auto own = host.path();
            std::mt19937 rng(static_cast<unsigned>(i));
            auto info = connect(*own, v);
            if (!info) {
                ++failed;
                return;
            }
            for (int k = 0; k < 5; ++k) {
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
                if (!host.has_secret()) ++lost;
            }
            if (!disconnect_json(*own, v, &*info, 0)) ++failed;
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(lost.load(), 0) << "a live attachment's secret was removed by another's disconnect";
    EXPECT_FALSE(host.has_secret());
}

TEST_F(SecretLifetime, RecordsAreRootOnlyFilesWithoutThePassword) {
    json::Value info;
    ASSERT_TRUE(connect_once(info));
    const fs::path record = fs::path(host.state.dir()) / "attachments" / net_disk::FileLedger::record_name(usage);
    struct stat st {};
    ASSERT_EQ(::stat(record.c_str(), &st), 0) << record;
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat(host.state.dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    std::stringstream text;
    text << std::ifstream(record).rdbuf();
    EXPECT_NE(text.str().find(info["attachment_id"].as_string()), std::string::npos);
    EXPECT_EQ(text.str().find(password), std::string::npos);
    ASSERT_TRUE(disconnect_json(*path, v, &info, 0).ok());
    EXPECT_FALSE(fs::exists(record)) << "the last record goes with the last attachment";
    EXPECT_EQ(net_disk::FileLedger::record_name("iscsi-volume-driver:iqn.x:y/1"), "v-iqn.x%3ay%2f1.json");
    EXPECT_EQ(net_disk::FileLedger::record_name(std::string(300, 'a')).substr(0, 2), "h-");
}

TEST_F(SecretLifetime, UnsafeStateDirIsAConfigErrorNamingStateDir) {
    fs::create_directories(host.state.root / "elsewhere");
    fs::create_directory_symlink(host.state.root / "elsewhere", host.state.dir());
    auto via_link = connect(*host.path(), v);
    ASSERT_FALSE(via_link.ok());
    EXPECT_EQ(via_link.error().status, Status::config);
    EXPECT_EQ(via_link.error().field, "state_dir");
    EXPECT_FALSE(host.has_secret()) << "nothing defined when the records cannot be kept";
    fs::remove(host.state.dir());
    fs::create_directory(host.state.dir());
    fs::permissions(host.state.dir(), fs::perms::all);  // 0777
    auto writable = connect(*host.path(), v);
    ASSERT_FALSE(writable.ok());
    EXPECT_EQ(writable.error().status, Status::config);
    EXPECT_EQ(writable.error().field, "state_dir");
    EXPECT_NE(writable.error().message.find("writable"), std::string::npos) << writable.error().message;
}

TEST_F(SecretLifetime, ALockHeldTooLongIsATimeoutNamingTheLock) {
    net_disk::FileLedger holder(host.state.dir(), 30s);
    auto held = holder.lock(usage);
    ASSERT_TRUE(held.ok()) << held.error().message;
    auto impatient = host.path(100ms);
    auto info = connect(*impatient, v);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::timeout);
    EXPECT_NE(info.error().message.find(host.state.dir() + "/locks/lock-"), std::string::npos) << info.error().message;
    EXPECT_FALSE(host.has_secret());
}

TEST_F(SecretLifetime, CleanupRemovesUnreferencedSecretsWithStaleRecordsButNotNewOnes) {
    json::Value crashed;
    ASSERT_TRUE(connect_once(crashed));  // never disconnected: a crashed host
    auto found = path->find_leftovers({});
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_EQ(found->size(), 1u);
    EXPECT_FALSE((*found)[0].in_use);
    EXPECT_EQ((*found)[0].detail["attachment_ids"].size(), 1u);
    // A connect after the scan is in flight: its secret must stay.
    json::Value in_flight;
    ASSERT_TRUE(connect_once(in_flight));
    EXPECT_FALSE(path->remove_leftover((*found)[0]).ok());
    EXPECT_TRUE(host.has_secret());
    ASSERT_TRUE(disconnect_json(*path, v, &in_flight, 0).ok());
    EXPECT_TRUE(host.has_secret()) << "the stale record still keeps it";
    ASSERT_TRUE(path->remove_leftover((*found)[0]).ok());
    EXPECT_FALSE(host.has_secret());
    auto after = path->find_leftovers({});
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(after->empty()) << "the stale record went with the secret";
}

}  // namespace
