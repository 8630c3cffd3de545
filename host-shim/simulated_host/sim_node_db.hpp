// The simulated host's open-iscsi node database (DIR/etc/iscsi/nodes/IQN/HOST,PORT): records, and the one lock
// over the whole database that iscsiadm takes around every record change (idbm_lock).
#pragma once

#include "sim_common.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ivd::simhost {

constexpr int iscsi_err_idbm = 6;  // ISCSI_ERR_IDBM: "iSCSI database failure"

struct Record {
    std::vector<std::pair<std::string, std::string>> entries;
    std::string get(const std::string &k) const;
    void set(const std::string &k, const std::string &v);  // an empty value removes the entry
};

std::optional<Record> load_record(const fs::path &p);
// Writes the record (temporary file, then rename) under the caller's NodeDbLock. On failure: false, and a
// message on stderr as iscsiadm reports a database failure; never an exception.
bool save_record(const Sim &sim, const fs::path &p, const Record &r);

// open-iscsi's idbm_lock(): one lock over the whole node database (/run/lock/iscsi/lock.write, made with link(2)
// and retried every 10 ms for up to 30 s), held while a record is read, created, updated or deleted, so one
// iscsiadm removing a target's directory never races another writing a record into it. Modelled with flock on
// DIR/run/lock/iscsi/lock: the same exclusion, and a stand-in killed mid-operation cannot wedge a test.
class NodeDbLock {
public:
    explicit NodeDbLock(const Sim &sim);
    ~NodeDbLock();
    NodeDbLock(const NodeDbLock &) = delete;
    NodeDbLock &operator=(const NodeDbLock &) = delete;
    bool held() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace ivd::simhost
