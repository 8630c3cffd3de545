// The fixture of the host path's policy tests: a HostPath over FakeHostOps (fake_host_ops.hpp) with fake libiscsi
// queries (every path healthy, the same LU, unless a test says otherwise). Shared by the policy test files.
#pragma once

#include "fake_host_ops.hpp"
#include "host_path/host_path.hpp"
#include "request/device_info.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>

namespace ivd::testing::policy {

using ivd::Status;
using ivd::json::Value;
using ivd::testing::FakeHostOps;
namespace request = ivd::request;

inline constexpr const char *iqn = "iqn.2024-01.org.example:policy";
inline const std::vector<std::string> portals = {"127.0.0.1:3260", "127.0.0.2:3260", "127.0.0.3:3260"};

inline request::Portal portal(const std::string &text) {
    auto p = request::parse_portal(text);
    EXPECT_TRUE(p.ok()) << text;
    return p ? *p : request::Portal{};
}

inline std::vector<std::string> strings(const std::vector<std::string> &prefix_of, const std::string &what) {
    std::vector<std::string> out;
    for (const auto &p : prefix_of) out.push_back(p + " " + what);
    return out;
}

class HostPathPolicy : public ::testing::Test {
protected:
    HostPathPolicy() {
        config_.device_wait_timeout = std::chrono::milliseconds(50);
        config_.multipath_wait_timeout = std::chrono::milliseconds(50);
        for (const auto &p : portals) volume_.targets.push_back(request::Target{portal(p), iqn, 1});
        volume_.targets_from_lists = true;
        volume_.volume_id = "vol-policy";
        connector_.initiator = "iqn.2024-01.org.example:initiator";
        disk_.dev = "sdb";
        decision_.path = ivd::AttachPath::host;
        decision_.multipath = true;
    }

    // The probe seam: every path healthy with the same LU, except where `probe_` says otherwise.
    ivd::host_path::StorageQueries queries() {
        ivd::host_path::StorageQueries q;
        q.probe = [this](const std::vector<request::Target> &targets, const ivd::iscsi::ProbeOptions &) {
            ++probes_;
            std::vector<ivd::iscsi::ProbeResult> out;
            for (const auto &t : targets) {
                ivd::iscsi::ProbeResult r;
                r.outcome = ivd::iscsi::ProbeOutcome::healthy;
                r.identity = ivd::iscsi::LuIdentity{FakeHostOps::default_wwid, {"3:" + std::string(FakeHostOps::default_wwid)}};
                if (auto it = probe_.find(t.portal.to_string()); it != probe_.end()) it->second(r);
                out.push_back(r);
            }
            return out;
        };
        q.discover = [](const request::Portal &, const std::string &, const request::ChapCredentials *,
                        std::chrono::milliseconds) -> ivd::Result<std::vector<ivd::iscsi::DiscoveredTarget>> {
            return ivd::make_error(Status::unreachable, "no discovery in these tests");
        };
        return q;
    }

    ivd::host_path::HostPath &path() {
        if (!path_) {
            auto ops = std::make_unique<FakeHostOps>();
            host_ = ops.get();
            for (auto &setup : host_setup_) setup(*host_);
            path_ = std::make_unique<ivd::host_path::HostPath>(config_, ivd::Logger{}, std::move(ops), queries(), journal_);
        }
        return *path_;
    }
    FakeHostOps &host() {
        path();
        return *host_;
    }

    ivd::Result<Value> connect() {
        path();
        const ivd::ConnectContext ctx{volume_, connector_, disk_, decision_, facts_};
        auto info = path_->connect(ctx);
        if (!info) return std::move(info).error();
        return info->to_json();
    }
    ivd::Result<void> disconnect(const Value &info, std::uint32_t flags = 0) {
        auto typed = ivd::request::parse_device_info(info);
        if (!typed) return std::move(typed).error();
        return path().disconnect(volume_, &*typed, {(flags & VD_DISCONNECT_FORCE) != 0, (flags & VD_DISCONNECT_IGNORE_ERRORS) != 0});
    }

    ivd::Result<std::uint64_t> extend(const Value &info) {
        auto typed = ivd::request::parse_device_info(info);
        if (!typed) return std::move(typed).error();
        return path().extend(volume_, *typed);
    }

    static std::vector<std::string> column(const Value &rows, const char *key) {
        std::vector<std::string> out;
        for (const auto &r : rows.items()) out.push_back(r[key].as_string());
        return out;
    }

    request::HostPathConfig config_;
    request::VolumeRequest volume_;
    request::Connector connector_;
    request::DiskTarget disk_;
    ivd::PathDecision decision_;
    ivd::HostFacts facts_;
    std::map<std::string, std::function<void(ivd::iscsi::ProbeResult &)>> probe_;
    std::vector<std::function<void(FakeHostOps &)>> host_setup_;
    int probes_ = 0;
    FakeHostOps *host_ = nullptr;
    // The crash journal (in memory): tests read its records and run cleanup on them.
    std::shared_ptr<ivd::host_path::AttachmentJournal> journal_ = ivd::host_path::make_memory_journal();
    std::unique_ptr<ivd::host_path::HostPath> path_;
};

}  // namespace ivd::testing::policy
