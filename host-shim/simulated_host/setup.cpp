#include "setup.hpp"

#include "sim_common.hpp"

#include <signal.h>

#include <stdexcept>
#include <thread>

#ifndef IVD_SIM_TOOLS_DIR
#error "IVD_SIM_TOOLS_DIR must name the directory of the built stand-in tools"
#endif

namespace ivd::simhost {

std::map<std::string, std::string> prepare_simulated_host(const std::string &dir_text, const std::string &initiator) {
    std::error_code ec;
    const fs::path dir = fs::absolute(dir_text, ec);
    for (const char *sub : {"bin", "sys/class/iscsi_session", "sys/class/iscsi_connection", "sys/class/scsi_host",
                            "sys/class/iscsi_host", "sys/block", "sys/devices/platform", "sys/devices/virtual/block",
                            "dev/disk/by-path", "dev/mapper", "etc/iscsi/nodes", "etc/multipath", "faults", "lock",
                            "state"}) {
        fs::create_directories(dir / sub, ec);
        if (ec) throw std::runtime_error("cannot create " + (dir / sub).string() + ": " + ec.message());
    }
    const fs::path tools(IVD_SIM_TOOLS_DIR);
    symlink_to(tools / "ivd-sim-iscsiadm", dir / "bin/iscsiadm");
    symlink_to(tools / "ivd-sim-multipath", dir / "bin/multipath");
    symlink_to(tools / "ivd-sim-multipath", dir / "bin/multipathd");
    write_file(dir / "etc/iscsi/initiatorname.iscsi", "InitiatorName=" + initiator);
    return {
        {"path", "host"},
        {"host_iscsi", "true"},
        {"host_multipath", "true"},
        {"initiator_name", initiator},
        {"initiator_name_file", (dir / "etc/iscsi/initiatorname.iscsi").string()},
        {"iscsiadm_path", (dir / "bin/iscsiadm").string()},
        {"multipath_path", (dir / "bin/multipath").string()},
        {"multipathd_path", (dir / "bin/multipathd").string()},
        {"sysfs_root", (dir / "sys").string()},
        {"dev_root", (dir / "dev").string()},
        {"iscsi_node_dir", (dir / "etc/iscsi/nodes").string()},
        {"lock_dir", (dir / "lock").string()},
    };
}

void stop_simulated_sessions(const std::string &dir) {
    const fs::path cls = fs::path(dir) / "sys/class/iscsi_session";
    std::error_code ec;
    std::vector<fs::path> sessions;
    for (fs::directory_iterator it(cls, ec), end; !ec && it != end; it.increment(ec)) {
        const int pid = std::atoi(read_file(it->path() / ".simpid").c_str());
        if (pid > 0) ::kill(pid, SIGTERM);
        sessions.push_back(it->path());
    }
    for (int i = 0; i < 300; ++i) {
        bool any = false;
        for (const auto &s : sessions) any = any || fs::exists(s, ec);
        if (!any) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace ivd::simhost
