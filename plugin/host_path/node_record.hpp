// open-iscsi node records (iscsi_node_dir/IQN/HOST,PORT or IQN/HOST,PORT,TPGT/IFACE), read and written as root
// by the rules of PrivateDir: no symlink anywhere under iscsi_node_dir, every directory and record owned by root
// and not writable by group or others, records replaced atomically with mode 0600. The CHAP password goes into
// a record this way only, never onto a command line.
#pragma once

#include "core/error.hpp"
#include "core/private_dir.hpp"
#include "core/secret.hpp"
#include "request/portal.hpp"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::host_path {

// One record file, in a directory held open and checked.
struct NodeRecord {
    std::shared_ptr<const PrivateDir> dir;  // the IQN's directory, or its HOST,PORT,TPGT directory
    std::string name;                       // the record's file name in it
    // Where a rewrite of the record is written before it is renamed in: iscsi_node_dir's parent, outside the
    // tree iscsiadm reads whole on every node command ("" when there is none: beside the record).
    std::string staging;
    std::string path() const { return dir->path() + "/" + name; }
};

// The record of (portal, IQN, iface): IQN/HOST,PORT,TPGT/IFACE, or a static IQN/HOST,PORT naming that iface
// (for "default": any static record, as before ifaces). None when there is none (nothing is created). An error
// when the record or a directory on the way to it is a symlink or not safe to write as root.
Result<std::optional<NodeRecord>> find_node_record(const std::string &node_dir, const request::Portal &portal,
                                                   const std::string &iqn, const std::string &iface = "default");

// A record seen by the cleanup scan.
struct FoundRecord {
    std::string relative;  // under iscsi_node_dir: "IQN/HOST,PORT" or "IQN/HOST,PORT,TPGT/IFACE"
    std::string iqn;
    request::Portal portal;
    Result<NodeRecord> record;  // an error when it is unsafe (it is then never read)
};

// Every record under node_dir (none when node_dir does not exist; nothing is created).
Result<std::vector<FoundRecord>> list_node_records(const std::string &node_dir);

// The record at `relative` (as FoundRecord names it), checked again; none when it is gone.
Result<std::optional<NodeRecord>> open_node_record(const std::string &node_dir, const std::string &relative);

// Where a record's rewrite is staged before it is renamed in (NodeRecord::staging): node_dir's parent, or ""
// for a node_dir right under / (then beside the record). The staged files' names start with staged_prefix.
std::string node_record_staging_dir(const std::string &node_dir);
inline constexpr std::string_view staged_prefix = ".ivd-node-";

// Whether a value comes back unchanged from a record: open-iscsi reads one line per setting and strips the
// white space around its value, so an empty value, a line break, a NUL or white space at either end do not.
bool fits_node_record(std::string_view value) noexcept;

// One non-secret setting of a record, `name = value`.
struct RecordSetting {
    std::string_view name;
    std::string value;
};

// In one rewrite: each setting's line replaced in place (or added before "# END RECORD"), and
// node.session.auth.password written (or, with password == nullptr, removed). What iscsiadm's `--op update`
// would write, without a process per record or the password on a command line. Refused, with nothing written,
// when a value does not fit a record. A record that would not change is not rewritten.
Result<void> write_record_settings(const NodeRecord &record, std::span<const RecordSetting> settings,
                                   const SecretString *password);

// write_record_settings with the password alone.
Result<void> set_record_password(const NodeRecord &record, const SecretString *password);

// Whether the record holds a node.session.auth.password line.
Result<bool> record_has_password(const NodeRecord &record);

}  // namespace ivd::host_path
