// The crash journal of the host path: one record per attached (or half attached) volume, written before the host
// is changed and updated as each step starts, so that after a crash (kill -9, power loss) `cleanup` knows what a
// connect or disconnect left: sessions, devices, the map, node records and the multipath wwids entry it added.
// Records are JSON (versioned) in state_dir/host-attachments, 0600 files of root's replaced atomically (fsync,
// rename; core/private_dir), so they survive a reboot. While a connect, disconnect or cleanup of a volume runs,
// its process holds the volume's flock file there: a record whose lock is free belongs to nobody alive.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ivd::host_path {

// One path (portal, IQN, LUN, iface) of an attachment.
struct JournalPath {
    request::Target target;
    std::string iface{request::default_iface};  // the open-iscsi iface of its session and node record
    std::string step;             // the step started last: login, scan, device, wwid, multipath_add, attached, undone
    bool owned = false;           // no session to (portal, IQN) through its iface existed before: the node record and session are ours
    bool device_existed = false;  // the LUN's device was there before: not ours to remove
    std::string device;           // "sdc", once known
};

struct JournalRecord {
    static constexpr int format_version = 1;
    std::string volume;  // VolumeRequest::volume_key()
    std::string state;   // "connecting", "connected", "disconnecting"
    std::string step;    // the step started last (connect or disconnect), for reports
    bool was_connected = false;  // a connect returned it once: a domain may use its devices
    std::vector<JournalPath> paths;
    std::string wwid;         // the LU's WWID (multipath form), once known
    bool wwid_added = false;  // no device of the LU existed before: the wwids entry (multipath -a) is ours
    std::string map_name;     // the multipath map, once it formed
    std::int64_t updated = 0;  // unix time of the last write
    int pid = 0;               // the process that wrote it last (reports only)

    JournalPath *path(const request::Target &target, const std::string &iface);
    bool has_path(const request::Target &target, const std::string &iface) const;
};

json::Value record_to_json(const JournalRecord &record);
// `where` names the file in errors.
Result<JournalRecord> record_from_json(const json::Value &value, const std::string &where);

// Held while one volume's journal steps run (a connect, a disconnect, a cleanup's undo); released on destruction.
class JournalLock {
public:
    virtual ~JournalLock() = default;
};

// Called after every record write; tests make the process stop dead there (_exit) to simulate a crash at a step.
using JournalObserver = std::function<void(const JournalRecord &)>;

class AttachmentJournal {
public:
    virtual ~AttachmentJournal() = default;
    // Exclusive for `volume` across processes, waiting up to state_lock_timeout.
    virtual Result<std::unique_ptr<JournalLock>> lock(const std::string &volume) = 0;
    // Exclusive for `volume` if nobody holds it now; nothing when someone does (an operation in progress).
    virtual Result<std::unique_ptr<JournalLock>> try_lock(const std::string &volume) = 0;
    // The rest expect the caller to hold the volume's lock (list() excepted).
    virtual Result<std::optional<JournalRecord>> read(const std::string &volume) = 0;
    virtual Result<void> write(JournalRecord record) = 0;
    virtual Result<void> remove(const std::string &volume) = 0;  // a missing record is not an error
    // Every record (for cleanup), read without the locks.
    virtual Result<std::vector<JournalRecord>> list() = 0;
};

// Files under `state_dir` (config key state_dir): host-attachments/<volume>.json and <volume>.lock.
std::shared_ptr<AttachmentJournal> make_file_journal(std::string state_dir, std::chrono::milliseconds lock_timeout,
                                                     JournalObserver observer = {});
// One process only, for the policy tests and benchmarks.
std::shared_ptr<AttachmentJournal> make_memory_journal();

// A connect that returns without success ends its journal record as it was before (removed when new): every
// step it did was undone on the way out. A crash runs no destructor: the record stays for cleanup.
// The record of one running connect or disconnect, kept in memory and written through on every change (the path
// threads of one connect update it at once). A write that fails after the first is a warning: the host steps go on,
// and cleanup still finds the devices from the targets.
class JournalEntry {
public:
    JournalEntry(AttachmentJournal &journal, const Logger &log, std::unique_ptr<JournalLock> lock,
                 JournalRecord record, std::optional<JournalRecord> before)
        : journal_(journal), log_(log), lock_(std::move(lock)), record_(std::move(record)), before_(std::move(before)) {}

    // Applies `change` and writes the record; the first write's error is returned (nothing done yet).
    Result<void> update(const std::function<void(JournalRecord &)> &change);
    // One path's step (a warning on failure).
    void path_step(const request::Target &target, const std::string &iface, const char *step,
                   const std::string &device = {});
    // The login step: also whether the session and the LUN's device were there before (only for a path this
    // record has not attached before: an earlier connect's answer stays).
    void path_login(const request::Target &target, const std::string &iface, bool owned, bool device_existed);
    // The login found the session there after all (not ours): what path_login recorded is corrected.
    void path_found_there(const request::Target &target, const std::string &iface, bool device_existed);
    // The attachment's step (and its map once known); a warning on failure.
    void update_step(const char *step, const std::string &map_name = {});
    // The record as it is now.
    JournalRecord current() const;
    // How the operation ended: removed (disconnected, or a failed connect that undid everything), or put back
    // as it was before this operation began (a failed reconnect, or a disconnect that changed nothing).
    void remove();
    void restore();
    const std::optional<JournalRecord> &before() const { return before_; }

private:
    void write_locked();

    AttachmentJournal &journal_;
    const Logger &log_;
    std::unique_ptr<JournalLock> lock_;
    mutable std::mutex mutex_;
    JournalRecord record_;
    std::optional<JournalRecord> before_;
};

struct JournalEnd {
    JournalEntry *entry = nullptr;
    bool connected = false;
    ~JournalEnd() {
        if (entry != nullptr && !connected) entry->restore();
    }
};

}  // namespace ivd::host_path
