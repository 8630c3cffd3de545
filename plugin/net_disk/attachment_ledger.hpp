// Who still needs a volume's CHAP secret: one record per connect that has not been disconnected yet. A libvirt
// secret is per volume, so it is shared by every attachment of that volume (two domains, a retry, a connect
// whose disk the host has not attached yet); only the records tell those apart from a leftover.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ivd::net_disk {

// A fresh attachment id, unique on this host: 32 lowercase hex digits, a random per-thread prefix and a count
// (attachment_id.cpp).
Result<std::string> new_attachment_id();
// True when `id` has the form new_attachment_id() produces.
bool valid_attachment_id(std::string_view id);
// A reserved record, not an attachment: the secret was there before any record of it (a driver before records
// defined it, or the records were lost), so some of its users may have none.
inline constexpr std::string_view unrecorded_users_id = "00000000000000000000000000000000";

// Held while one volume's secret steps run; released on destruction.
class LedgerLock {
public:
    virtual ~LedgerLock() = default;
};

class AttachmentLedger {
public:
    virtual ~AttachmentLedger() = default;
    // Exclusive for `usage` (across processes for the file ledger), bounded wait; a timeout names the lock.
    virtual Result<std::unique_ptr<LedgerLock>> lock(const std::string &usage) = 0;
    // The rest expect the lock of `usage` to be held by the caller (usages() excepted).
    virtual Result<std::set<std::string>> attachments(const std::string &usage) = 0;
    virtual Result<void> add(const std::string &usage, const std::string &id) = 0;
    // add() for a secret the connect found already defined: when `usage` has no record yet, some of the secret's
    // users have none, so unrecorded_users_id is recorded with `id`, in the same read and write.
    virtual Result<void> add_to_found_secret(const std::string &usage, const std::string &id) = 0;
    // A missing record is not an error (disconnect is idempotent).
    virtual Result<void> remove(const std::string &usage, const std::string &id) = 0;
    // Every record of `usage` at once, the mark included (the file goes unread).
    virtual Result<void> clear(const std::string &usage) = 0;
    // Every usage with at least one record (for cleanup).
    virtual Result<std::vector<std::string>> usages() = 0;
};

// Records as files under `state_dir` (config key state_dir), opened through PrivateDir on every call: a 0700
// directory of root's, no symlinks, 0600 files replaced atomically. They survive a reboot, as libvirt's
// persistent secrets do. Layout: attachments/<volume key>.json holds {"usage", "attachments": [{"id",
// "created"}]} (never a password); locks/lock-NN are flock files, a fixed set the usages hash onto.
class FileLedger final : public AttachmentLedger {
public:
    FileLedger(std::string state_dir, std::chrono::milliseconds lock_timeout)
        : state_dir_(std::move(state_dir)), lock_timeout_(lock_timeout) {}
    Result<std::unique_ptr<LedgerLock>> lock(const std::string &usage) override;
    Result<std::set<std::string>> attachments(const std::string &usage) override;
    Result<void> add(const std::string &usage, const std::string &id) override;
    Result<void> add_to_found_secret(const std::string &usage, const std::string &id) override;
    Result<void> remove(const std::string &usage, const std::string &id) override;
    Result<void> clear(const std::string &usage) override;
    Result<std::vector<std::string>> usages() override;

    // The record file name of a usage (exposed for tests).
    static std::string record_name(const std::string &usage);

private:
    std::string state_dir_;
    std::chrono::milliseconds lock_timeout_;
};

// One process only: for unit tests, benchmarks and fuzzing, which must not write to the host's state_dir.
class MemoryLedger final : public AttachmentLedger {
public:
    Result<std::unique_ptr<LedgerLock>> lock(const std::string &usage) override;
    Result<std::set<std::string>> attachments(const std::string &usage) override;
    Result<void> add(const std::string &usage, const std::string &id) override;
    Result<void> add_to_found_secret(const std::string &usage, const std::string &id) override;
    Result<void> remove(const std::string &usage, const std::string &id) override;
    Result<void> clear(const std::string &usage) override;
    Result<std::vector<std::string>> usages() override;

private:
    std::mutex lock_;   // the "volume lock": one for all usages is enough here
    std::mutex mutex_;  // the map
    std::map<std::string, std::set<std::string>> records_;
};

}  // namespace ivd::net_disk
