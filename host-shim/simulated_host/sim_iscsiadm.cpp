// Stand-in for open-iscsi's iscsiadm (node mode) plus the kernel's iSCSI session: a login really logs in to the
// portal with libiscsi, and a forked session process keeps that session, acting as the kernel for it (LUN scans
// through DIR/sys/class/scsi_host/hostH/scan, device deletes through .../device/delete, logout on SIGTERM).
#include "sim_common.hpp"
#include "sim_node_db.hpp"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

using namespace ivd::simhost;

namespace {

struct Args {
    std::string mode, iqn, portal, op;
    // -n NAME -v VALUE pairs in order; like iscsiadm, an update applies every pair.
    std::vector<std::pair<std::string, std::string>> params;
    std::optional<std::string> name, value;
    bool login = false, logout = false;
};

void split_portal(const std::string &portal, std::string &host, std::string &port);

fs::path record_path(const Sim &sim, const std::string &iqn, const std::string &portal) {
    std::string host, port;
    split_portal(portal, host, port);
    return sim.nodes() / iqn / (host + "," + port);
}

void split_portal(const std::string &portal, std::string &host, std::string &port) {
    const auto colon = portal.rfind(':');
    const auto bracket = portal.find(']');
    if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
        host = portal;
        port = "3260";
    } else {
        host = portal.substr(0, colon);
        port = portal.substr(colon + 1);
    }
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
}

// Finds the session for (iqn, portal) in DIR/sys/class/iscsi_session.
std::optional<std::string> find_session(const Sim &sim, const std::string &iqn, const std::string &portal) {
    std::string host, port;
    split_portal(portal, host, port);
    std::error_code ec;
    for (fs::directory_iterator it(sim.sys() / "class/iscsi_session", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (read_file(it->path() / "targetname") != iqn) continue;
        const fs::path conn = sim.sys() / "class/iscsi_connection" / ("connection" + name.substr(7) + ":0");
        if (read_file(conn / "persistent_address") == host && read_file(conn / "persistent_port") == port) return name;
    }
    return std::nullopt;
}

std::string designator_text(const struct scsi_inquiry_device_designator *d) {
    std::string hex;
    char b[3];
    for (int i = 0; i < d->designator_length; ++i) {
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(d->designator[i]));
        hex += b;
    }
    return hex;
}

// The kernel's wwid text for a LUN from VPD page 0x83 (NAA first, then EUI-64, then T10), empty if none.
std::string read_wwid(struct iscsi_context *iscsi, int lun) {
    struct scsi_task *task = iscsi_inquiry_sync(iscsi, lun, 1, SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, 255);
    if (task == nullptr || task->status != SCSI_STATUS_GOOD) {
        if (task) scsi_free_scsi_task(task);
        return {};
    }
    auto *id = static_cast<struct scsi_inquiry_device_identification *>(scsi_datain_unmarshall(task));
    std::string naa, eui, t10;
    for (auto *d = id ? id->designators : nullptr; d != nullptr; d = d->next) {
        if (d->association != SCSI_ASSOCIATION_LOGICAL_UNIT) continue;
        if (d->designator_type == SCSI_DESIGNATOR_TYPE_NAA && naa.empty()) naa = "naa." + designator_text(d);
        if (d->designator_type == SCSI_DESIGNATOR_TYPE_EUI_64 && eui.empty()) eui = "eui." + designator_text(d);
        if (d->designator_type == SCSI_DESIGNATOR_TYPE_T10_VENDORT_ID && t10.empty()) {
            t10 = "t10." + std::string(d->designator, static_cast<std::size_t>(d->designator_length));
        }
    }
    scsi_free_scsi_task(task);
    return !naa.empty() ? naa : !eui.empty() ? eui : t10;
}

bool lun_exists(struct iscsi_context *iscsi, int lun) {
    struct scsi_task *task = iscsi_inquiry_sync(iscsi, lun, 0, 0, 64);
    if (task == nullptr) return false;
    bool ok = task->status == SCSI_STATUS_GOOD && task->datain.size > 0 && (task->datain.data[0] & 0xe0) == 0;
    scsi_free_scsi_task(task);
    return ok;
}

volatile sig_atomic_t stop_requested = 0;

struct SessionProcess {
    Sim sim;
    std::string iqn, host, port;
    int host_no = 0, sid = 0;
    struct iscsi_context *iscsi = nullptr;
    std::map<int, std::string> devices;  // lun -> sdX

    fs::path host_dir() const { return sim.sys() / "devices/platform" / ("host" + std::to_string(host_no)); }
    fs::path session_dir() const { return host_dir() / ("session" + std::to_string(sid)); }
    std::string hctl(int lun) const { return std::to_string(host_no) + ":0:0:" + std::to_string(lun); }
    fs::path lu_dir(int lun) const { return session_dir() / ("target" + std::to_string(host_no) + ":0:0") / hctl(lun); }
    std::string by_path(int lun) const {
        const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        return "ip-" + h + ":" + port + "-iscsi-" + iqn + "-lun-" + std::to_string(lun);
    }

    void create_session_tree() {
        const std::string h = "host" + std::to_string(host_no), s = "session" + std::to_string(sid);
        const std::string c = "connection" + std::to_string(sid) + ":0";
        write_file(host_dir() / "scsi_host" / h / "scan", "");
        fs::create_directories(host_dir() / "iscsi_host" / h);
        symlink_to(host_dir(), host_dir() / "iscsi_host" / h / "device");
        const fs::path sd = session_dir() / "iscsi_session" / s;
        write_file(sd / "targetname", iqn);
        write_file(sd / "tpgt", "1");
        write_file(sd / "state", "LOGGED_IN");
        write_file(sd / ".simpid", std::to_string(::getpid()));
        symlink_to(session_dir(), sd / "device");
        const fs::path cd = session_dir() / c / "iscsi_connection" / c;
        write_file(cd / "persistent_address", host);
        write_file(cd / "persistent_port", port);
        write_file(cd / "address", host);
        write_file(cd / "port", port);
        fs::create_directories(session_dir() / ("target" + std::to_string(host_no) + ":0:0"));
        symlink_to(sd, sim.sys() / "class/iscsi_session" / s);
        symlink_to(cd, sim.sys() / "class/iscsi_connection" / c);
        symlink_to(host_dir() / "scsi_host" / h, sim.sys() / "class/scsi_host" / h);
        symlink_to(host_dir() / "iscsi_host" / h, sim.sys() / "class/iscsi_host" / h);
    }

    void add_device(int lun) {
        if (devices.count(lun) || !lun_exists(iscsi, lun)) return;
        const long delay = fault_number(sim, "device_delay_ms");
        if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        const std::string wwid = fault(sim, "no_wwid") ? std::string() : read_wwid(iscsi, lun);
        TreeLock lock(sim);
        const std::string name = sd_name(next_number(sim, "sd"));
        const fs::path lu = lu_dir(lun);
        fs::create_directories(lu / "block" / name / "holders");
        fs::create_directories(lu / "block" / name / "slaves");
        if (!wwid.empty()) write_file(lu / "wwid", wwid);
        write_file(lu / "state", "running");
        write_file(lu / "delete", "");
        symlink_to(lu, lu / "block" / name / "device");
        symlink_to(lu / "block" / name, sim.sys() / "block" / name);
        write_file(sim.dev() / name, "");
        symlink_to("../../" + name, sim.dev() / "disk/by-path" / by_path(lun));
        devices[lun] = name;
    }

    void remove_device(int lun) {
        TreeLock lock(sim);
        const std::string name = devices[lun];
        std::error_code ec;
        fs::remove(sim.dev() / "disk/by-path" / by_path(lun), ec);
        fs::remove(sim.dev() / name, ec);
        fs::remove_all(lu_dir(lun), ec);
        fs::remove(sim.sys() / "block" / name, ec);  // last: its absence is what "deleted" means to a reader
        // multipathd would drop the path from its map on the uevent.
        for (fs::directory_iterator it(sim.sys() / "block", ec), end; !ec && it != end; it.increment(ec)) {
            std::error_code ec2;
            fs::remove(it->path() / "slaves" / name, ec2);
        }
        devices.erase(lun);
    }

    void remove_session_tree() {
        TreeLock lock(sim);
        const std::string h = "host" + std::to_string(host_no), s = "session" + std::to_string(sid);
        std::error_code ec;
        fs::remove(sim.sys() / "class/iscsi_session" / s, ec);
        fs::remove(sim.sys() / "class/iscsi_connection" / ("connection" + std::to_string(sid) + ":0"), ec);
        fs::remove(sim.sys() / "class/scsi_host" / h, ec);
        fs::remove(sim.sys() / "class/iscsi_host" / h, ec);
        fs::remove_all(host_dir(), ec);
    }

    void run() {
        const fs::path scan = host_dir() / "scsi_host" / ("host" + std::to_string(host_no)) / "scan";
        while (!stop_requested) {
            std::error_code ec;
            if (!fs::exists(session_dir(), ec)) break;  // the tree was wiped (test cleanup)
            std::string text;
            {
                TreeLock lock(sim);
                text = read_file(scan);
                if (!text.empty()) write_file(scan, "");
                // Fault drop_scans=N: the next N scan requests are lost (as one sent to a session being replaced).
                if (!text.empty()) {
                    if (const long drop = fault_number(sim, "drop_scans"); drop > 0) {
                        write_file(sim.dir / "faults" / "drop_scans", std::to_string(drop - 1));
                        text.clear();
                    }
                }
            }
            std::istringstream lines(text);
            std::string c, t, l;
            while (lines >> c >> t >> l) add_device(std::atoi(l.c_str()));
            for (auto it = devices.begin(); it != devices.end();) {
                const int lun = it->first;
                ++it;
                if (read_file(lu_dir(lun) / "delete").rfind("1", 0) == 0) remove_device(lun);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        // Logout: the kernel removes the session's devices, then the session.
        while (!devices.empty()) remove_device(devices.begin()->first);
        // The session ends at the target before its sysfs entries go, so "logout returned" means "logged out".
        iscsi_logout_sync(iscsi);
        iscsi_destroy_context(iscsi);
        remove_session_tree();
    }
};

int login(const Sim &sim, const Args &a) {
    const fs::path rp = record_path(sim, a.iqn, a.portal);
    std::optional<Record> rec;
    {
        NodeDbLock db(sim);  // iscsiadm reads the record under idbm_lock, and logs in without it
        if (!db.held()) return iscsi_err_idbm;
        rec = load_record(rp);
    }
    if (!rec) {
        std::cerr << "iscsiadm: No records found\n";
        return 21;
    }
    const std::string where = "[iface: default, target: " + a.iqn + ", portal: " + a.portal + "]";
    const long latency = fault_number(sim, "login_latency_ms");
    if (latency > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency));
    {
        TreeLock lock(sim);
        if (find_session(sim, a.iqn, a.portal)) {
            std::cerr << "iscsiadm: default: 1 session requested, but 1 already present.\n";
            return 15;
        }
    }
    std::string host, port;
    split_portal(a.portal, host, port);
    std::cout << "Logging in to " << where << "\n";
    if (fault(sim, "login_fail_" + host + "_" + port)) {
        std::cerr << "iscsiadm: Could not login to " << where << ".\n"
                  << "iscsiadm: initiator reported error (8 - connection timed out)\n";
        return 8;
    }
    int pipefd[2];
    if (::pipe(pipefd) != 0) return 1;
    const pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        ::close(pipefd[0]);
        ::setsid();
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (::fork() > 0) ::_exit(0);  // daemonise: the session outlives iscsiadm
        signal(SIGTERM, [](int) { stop_requested = 1; });
        auto reply = [&](const std::string &m) {
            [[maybe_unused]] auto n = ::write(pipefd[1], m.data(), m.size());
            ::close(pipefd[1]);
        };
        const std::string initiator = [&] {
            std::string t = read_file(sim.dir / "etc/iscsi/initiatorname.iscsi");
            const auto eq = t.find('=');
            return eq == std::string::npos ? std::string("iqn.2004-10.org.example:simulated-host") : t.substr(eq + 1);
        }();
        SessionProcess sp;
        sp.sim = sim;
        sp.iqn = a.iqn;
        sp.host = host;
        sp.port = port;
        sp.iscsi = iscsi_create_context(initiator.c_str());
        iscsi_set_targetname(sp.iscsi, a.iqn.c_str());
        iscsi_set_session_type(sp.iscsi, ISCSI_SESSION_NORMAL);
        iscsi_set_header_digest(sp.iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
        iscsi_set_timeout(sp.iscsi, 10);
        if (rec->get("node.session.auth.authmethod") == "CHAP") {
            iscsi_set_initiator_username_pwd(sp.iscsi, rec->get("node.session.auth.username").c_str(),
                                             rec->get("node.session.auth.password").c_str());
        }
        const std::string address = host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
        if (iscsi_connect_sync(sp.iscsi, address.c_str()) != 0) {
            reply(std::string("8 ") + iscsi_get_error(sp.iscsi));
            ::_exit(0);
        }
        if (iscsi_login_sync(sp.iscsi) != 0) {
            const std::string e = iscsi_get_error(sp.iscsi);
            reply((e.find("uthentication") != std::string::npos ? "24 " : "19 ") + e);
            ::_exit(0);
        }
        {
            TreeLock lock(sim);
            if (find_session(sim, a.iqn, a.portal)) {  // lost a race with another login
                reply("15 session exists");
                iscsi_logout_sync(sp.iscsi);
                ::_exit(0);
            }
            sp.host_no = next_number(sim, "host") + 1;
            sp.sid = next_number(sim, "session") + 1;
            sp.create_session_tree();
        }
        reply("0 ok");
        sp.run();
        ::_exit(0);
    }
    ::close(pipefd[1]);
    ::waitpid(pid, nullptr, 0);
    std::string reply;
    char buf[512];
    pollfd p{pipefd[0], POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && ::poll(&p, 1, 100) >= 0) {
        if (p.revents == 0) continue;
        const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n <= 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
    const int code = reply.empty() ? 8 : std::atoi(reply.c_str());
    if (code == 0) {
        std::cout << "Login to " << where << " successful.\n";
        return 0;
    }
    if (code == 15) {
        std::cerr << "iscsiadm: default: 1 session requested, but 1 already present.\n";
        return 15;
    }
    std::cerr << "iscsiadm: Could not login to " << where << ".\n"
              << "iscsiadm: initiator reported error (" << code << " - "
              << (reply.size() > 2 ? reply.substr(reply.find(' ') + 1) : "no reply") << ")\n";
    return code;
}

int logout(const Sim &sim, const Args &a) {
    std::optional<std::string> session;
    {
        TreeLock lock(sim);
        session = find_session(sim, a.iqn, a.portal);
    }
    if (!session) {
        std::cerr << "iscsiadm: No matching sessions found\n";
        return 21;
    }
    const fs::path sdir = sim.sys() / "class/iscsi_session" / *session;
    const pid_t pid = std::atoi(read_file(sdir / ".simpid").c_str());
    if (pid > 0) ::kill(pid, SIGTERM);
    for (int i = 0; i < 500; ++i) {
        std::error_code ec;
        if (!fs::exists(sdir, ec)) {
            std::cout << "Logout of [sid: " << session->substr(7) << ", target: " << a.iqn << ", portal: " << a.portal
                      << "] successful.\n";
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::cerr << "iscsiadm: Could not logout of " << *session << "\n";
    return 8;
}

int node_op(const Sim &sim, const Args &a) {
    const fs::path rp = record_path(sim, a.iqn, a.portal);
    NodeDbLock db(sim);
    if (!db.held()) {
        std::cerr << "iscsiadm: Could not lock discovery DB\n";
        return iscsi_err_idbm;
    }
    if (a.op == "new") {
        Record r;
        std::string host, port;
        split_portal(a.portal, host, port);
        r.set("node.name", a.iqn);
        r.set("node.tpgt", "-1");
        r.set("node.startup", "automatic");
        r.set("node.session.scan", "auto");
        r.set("node.session.auth.authmethod", "None");
        r.set("node.conn[0].address", host);
        r.set("node.conn[0].port", port);
        if (!save_record(sim, rp, r)) return iscsi_err_idbm;
        std::cout << "New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] " << host << "," << port << ",-1 " << a.iqn
                  << "] added\n";
        return 0;
    }
    auto rec = load_record(rp);
    if (!rec) {
        std::cerr << "iscsiadm: No records found\n";
        return 21;
    }
    if (a.op == "delete") {
        std::error_code ec;
        if (!fs::remove(rp, ec)) {
            std::cerr << "iscsiadm: Could not remove " << rp.string() << ": " << ec.message() << "\n";
            return iscsi_err_idbm;
        }
        // As idbm_delete_node: the target's directory goes only when no other portal's record is in it (rmdir).
        fs::remove(rp.parent_path(), ec);
        return 0;
    }
    if (a.op == "update") {
        if (a.params.empty()) {
            std::cerr << "iscsiadm: update requires name and value\n";
            return 7;
        }
        for (const auto &[name, value] : a.params) rec->set(name, value);
        return save_record(sim, rp, *rec) ? 0 : iscsi_err_idbm;
    }
    std::cerr << "iscsiadm: operation '" << a.op << "' is not supported by the simulated host\n";
    return 7;
}

}  // namespace

int main(int argc, char **argv) {
    const Sim sim = open_sim(argc, argv);
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
        if (s == "-m" || s == "--mode") a.mode = next();
        else if (s == "-T" || s == "--targetname") a.iqn = next();
        else if (s == "-p" || s == "--portal") a.portal = next();
        else if (s == "-I" || s == "--interface") next();
        else if (s == "-o" || s == "--op") a.op = next();
        else if (s == "-n" || s == "--name") a.name = next();
        else if (s == "-v" || s == "--value") a.value = next();
        else if (s == "-l" || s == "--login") a.login = true;
        else if (s == "-u" || s == "--logout") a.logout = true;
        else {
            std::cerr << "iscsiadm: unrecognized option '" << s << "'\n";
            return 7;
        }
        if (a.name && a.value) {  // as iscsiadm pairs them: each -n with the next -v
            a.params.emplace_back(*a.name, *a.value);
            a.name.reset();
            a.value.reset();
        }
    }
    if (a.mode != "node" || a.iqn.empty() || a.portal.empty()) {
        std::cerr << "iscsiadm: the simulated host supports -m node -T IQN -p PORTAL only\n";
        return 7;
    }
    if (a.login) return login(sim, a);
    if (a.logout) return logout(sim, a);
    return node_op(sim, a);
}
