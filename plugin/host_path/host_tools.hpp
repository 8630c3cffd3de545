// The host's command-line tools (open-iscsi's iscsiadm, multipath-tools), run by absolute path with a timeout;
// their exit codes turned into Status values.
#pragma once

#include "core/error.hpp"
#include "core/log.hpp"
#include "host_path/process.hpp"
#include "request/driver_config.hpp"
#include "request/portal.hpp"

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace ivd::host_path {

// open-iscsi exit codes (include/iscsi_err.h).
inline constexpr int iscsi_err_trans_timeout = 8;
inline constexpr int iscsi_err_sess_exists = 15;
inline constexpr int iscsi_err_no_objs_found = 21;
inline constexpr int iscsi_err_login_auth_failed = 24;

class HostTools {
public:
    HostTools(const request::HostPathConfig &config, const Logger &log) : c_(config), log_(log) {}

    // Runs argv under command_timeout; exit 0 (or one of `also_ok`) is success.
    Result<void> tool(const std::vector<std::string> &argv, std::initializer_list<int> also_ok = {}) const;
    // iscsiadm with `args`.
    Result<void> iscsiadm(std::vector<std::string> args, std::initializer_list<int> also_ok = {}) const;
    // `iscsiadm -m node ... --interface IFACE --login` under login_timeout; the caller reads the exit code (see
    // login_failure).
    ProcessResult login(const request::Portal &portal, const std::string &iqn, const std::string &iface) const;
    // `iscsiadm -m iface -I NAME`: the iface's settings as iscsiadm prints them; the tool's message as the error
    // when it knows no such iface (or could not say).
    Result<std::string> show_iface(const std::string &name) const;
    // The error for a login that did not succeed (nothing when it did, or the session existed already).
    std::optional<Error> login_failure(const ProcessResult &r, const request::Portal &portal, const std::string &iqn) const;

    // `multipath -a WWID`. The caller skips it for a WWID the wwids file lists already: the real tool then
    // rewrites the file for nothing, and costs a guest seconds per connect.
    Result<void> multipath_whitelist(const std::string &wwid) const { return tool({c_.multipath_path, "-a", wwid}); }
    Result<void> multipath_forget_wwid(const std::string &wwid) const { return tool({c_.multipath_path, "-w", wwid}); }
    Result<void> multipathd_add_path(const std::string &device_path) const {
        return tool({c_.multipathd_path, "add", "path", device_path});
    }
    // `multipathd resize map NAME`: multipathd answers "ok", "fail" or "timeout" on stdout (older versions exit 0
    // with "fail"), so the answer is read, not only the exit code. "timeout" (a reconfigure in progress) comes
    // back as Status::timeout for the caller to retry.
    Result<void> multipathd_resize_map(const std::string &map_name) const;
    Result<void> multipath_flush(const std::string &map_name) const { return tool({c_.multipath_path, "-f", map_name}); }

    // Clean removal. The path devices multipathd monitors (`multipathd show paths raw format %d`: one name a line,
    // no header), whether or not they are in a map.
    Result<std::vector<std::string>> multipathd_show_paths() const;
    // `multipathd del path DEV` and `multipathd del map NAME`; their answer ("ok", "fail") is read as resize's is.
    Result<void> multipathd_del_path(const std::string &device) const { return multipathd_ok({"del", "path", device}); }
    Result<void> multipathd_del_map(const std::string &map_name) const { return multipathd_ok({"del", "map", map_name}); }
    // `dmsetup remove --deferred NAME`: the map removed at once when it is not open, else by the kernel at its last
    // close (exit 0 either way: the kernel keeps the deferred flag).
    Result<void> dmsetup_remove_deferred(const std::string &map_name, std::chrono::milliseconds timeout) const {
        return dmsetup({"remove", "--deferred", map_name}, timeout);
    }
    // `dmsetup wipe_table NAME`: the table becomes an error target (all I/O fails, queued I/O too).
    Result<void> dmsetup_wipe_table(const std::string &map_name, std::chrono::milliseconds timeout) const {
        return dmsetup({"wipe_table", map_name}, timeout);
    }

private:
    // dmsetup with `args` under min(command_timeout, `timeout`).
    Result<void> dmsetup(const std::vector<std::string> &args, std::chrono::milliseconds timeout) const;
    // Runs multipathd with `args`; its stdout when it exited 0 and did not answer "fail" or "timeout".
    Result<std::string> multipathd_answer(const std::vector<std::string> &args) const;
    Result<void> multipathd_ok(const std::vector<std::string> &args) const;

    const request::HostPathConfig &c_;
    const Logger &log_;
};

// iscsi_ifaces (iface_setup.cpp): the iface exists, or is created bound to its netdev (`iscsiadm -m iface -I NAME
// -o new`, then `-o update -n iface.net_ifacename -v NETDEV`; removed again when that fails). A config error
// naming iscsi_ifaces: an iface that does not exist and has no netdev, or one bound to another netdev.
Result<void> ensure_iscsi_iface(const HostTools &tools, const request::IscsiIface &iface);

}  // namespace ivd::host_path
