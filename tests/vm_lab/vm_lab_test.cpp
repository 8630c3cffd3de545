// The real-kernel lab: the host (multipath) path of the freshly built module, run by volume-host inside a Debian 12
// guest under QEMU TCG, against a real tgtd on this host with two portals, CHAP on, and two LUNs.
//
//  host (this test)                                      guest (guest_lab.sh as PID 1, real kernel)
//  TgtdLab on 127.0.0.1:P1 and :P2  <--- slirp --->      10.0.2.2:P1, 10.0.2.2:P2: iscsid, multipathd, udev
//  stage dir (9p share "lab", ro)   ---------------->    /lab: volume-host, module, inputs, guest_lab.sh
//  console pipe (ttyS0)             <----------------    VMLAB RESULT / REQUEST / DONE lines
//  control socket (ttyS1)           ---------------->    ACK <action> ok|fail
//
// How the binaries reach the guest: a read-only 9p share of a per-run stage directory, not a copy into the image.
// The cached image (build_image.sh) stays byte-for-byte the same between runs and is booted with -snapshot, so a
// run costs no image rewrite (mkfs of 2 GB, or a loop mount that this kernel may not offer) and a rebuilt module is
// picked up simply by staging it again. The stage dir holds the CHAP password (the connection_info files) and is
// 0700 and removed when the test ends.
//
// Environment: IVD_VM_LAB_DEADLINE_S (guest run deadline, default 600), IVD_VM_LAB_CACHE (image cache dir),
// IVD_VM_LAB_KEEP_STAGE=1 (keep the stage directory for debugging: it holds the CHAP password).
#include "tgtd_lab.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void write_file(const fs::path &p, std::string_view text, mode_t mode = 0600) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + p.string());
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + p.string());
}

std::string random_password() {
    // 16 characters: what every initiator accepts for a CHAP secret.
    static constexpr char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::random_device rd;
    std::string s;
    for (int i = 0; i < 16; ++i) s += alphabet[rd() % (sizeof alphabet - 1)];
    return s;
}

// Runs a command to completion; stdout is returned, stderr goes to ours (build progress).
int run_capture(const std::vector<std::string> &argv, std::string *out) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        std::vector<char *> a;
        for (const auto &s : argv) a.push_back(const_cast<char *>(s.c_str()));
        a.push_back(nullptr);
        ::execv(a[0], a.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out->append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string connection_info(const ivd::testing::TgtdPortal &p1, const ivd::testing::TgtdPortal &p2,
                            const std::string &iqn, int lun, const std::string &user, const std::string &password) {
    const auto g1 = fmt::format("10.0.2.2:{}", p1.port), g2 = fmt::format("10.0.2.2:{}", p2.port);
    return fmt::format(R"({{"driver_volume_type":"iscsi","data":{{"volume_id":"vmlab-lun{}",)"
                       R"("target_portals":["{}","{}"],"target_iqns":["{}","{}"],"target_luns":[{},{}],)"
                       R"("auth_method":"CHAP","auth_username":"{}","auth_password":"{}"}}}})",
                       lun, g1, g2, iqn, iqn, lun, lun, user, password);
}

std::string redact(std::string text, const std::string &secret) {
    for (std::size_t at; !secret.empty() && (at = text.find(secret)) != std::string::npos;) {
        text.replace(at, secret.size(), "<REDACTED>");
    }
    return text;
}

std::string tail_lines(const std::string &text, int n) {
    std::size_t at = text.size();
    for (int i = 0; i <= n && at != std::string::npos && at > 0; ++i) at = text.rfind('\n', at - 1);
    return at == std::string::npos ? text : text.substr(at + 1);
}

class Stage {
public:
    Stage() {
        char tmpl[] = "/tmp/ivd-vmlab-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        ::chmod(tmpl, 0700);
    }
    ~Stage() {
        if (std::getenv("IVD_VM_LAB_KEEP_STAGE") != nullptr) return;
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    fs::path dir;
};

}  // namespace

TEST(VmLab, HostPathOnRealKernel) {
    const auto t0 = Clock::now();

    // 1. The guest image (cached; built once per key).
    std::string image_out;
    ASSERT_EQ(run_capture({IVD_VM_LAB_BUILD_IMAGE}, &image_out), 0) << "build_image.sh failed (see its stderr above)";
    while (!image_out.empty() && image_out.back() == '\n') image_out.pop_back();
    const fs::path image = image_out.substr(image_out.rfind('\n') == std::string::npos ? 0 : image_out.rfind('\n') + 1);
    ASSERT_TRUE(fs::exists(image / "COMPLETE")) << image;
    const double image_s = seconds_since(t0);
    std::cout << fmt::format("[vm-lab] guest image {} ready after {:.1f} s\n", image.string(), image_s);

    // 2. tgtd on 127.0.0.1 (the guest's 10.0.2.2), two portals, CHAP, LUN 1 and LUN 2 with known bytes.
    ivd::testing::TgtdLab lab(ivd::testing::TgtdLabOptions{.address = "127.0.0.1"});
    const auto p1 = lab.portal();
    const auto p2 = lab.add_portal();
    const std::string iqn = lab.make_iqn("vmlab");
    const int tid = lab.create_target(iqn);
    const auto lun1 = lab.add_lun(tid, 1);
    const auto lun2 = lab.add_lun(tid, 2);
    const std::string user = "vmlab-user";
    std::string password = random_password();
    lab.add_account(user, password);
    lab.bind_account(tid, user);

    // 3. The stage directory, shared read-only with the guest.
    Stage stage;
    fs::create_directories(stage.dir / "bin");
    fs::copy_file(VOLUME_HOST_PATH, stage.dir / "bin/volume-host");
    fs::copy_file(IVD_MODULE_PATH, stage.dir / "bin/iscsi_volume_driver.so");
    fs::copy_file(IVD_VM_LAB_GUEST_SCRIPT, stage.dir / "guest_lab.sh");
    fs::permissions(stage.dir / "guest_lab.sh", fs::perms::owner_all);
    write_file(stage.dir / "lab.env",
               fmt::format("PORTAL1=10.0.2.2:{}\nPORTAL2=10.0.2.2:{}\nIQN={}\nINITIATOR=iqn.2003-01.org.ivd-lab:vmlab-guest\n",
                           p1.port, p2.port, iqn));
    write_file(stage.dir / "ci-lun1.json", connection_info(p1, p2, iqn, 1, user, password));
    write_file(stage.dir / "ci-lun2.json", connection_info(p1, p2, iqn, 2, user, password));
    write_file(stage.dir / "chap.secret", password + "\n");
    write_file(stage.dir / "lun1.head", std::string(lun1.head.begin(), lun1.head.end()));
    write_file(stage.dir / "lun2.head", std::string(lun2.head.begin(), lun2.head.end()));

    // 4. QEMU (TCG), console on a pipe, control serial on a unix socket.
    const std::string ctl = (stage.dir / "ctl.sock").string();
    const std::string append = "root=/dev/vda rw console=ttyS0 init=/sbin/vmlab-init quiet panic=-1";
    std::vector<std::string> argv = {
        "/usr/bin/qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "1", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot",
        "-kernel", (image / "vmlinuz").string(), "-initrd", (image / "initrd.img").string(), "-append", append,
        "-drive", fmt::format("file={},if=virtio,format=raw,snapshot=on", (image / "rootfs.img").string()),
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
        "-virtfs", fmt::format("local,path={},mount_tag=lab,security_model=none,readonly=on", stage.dir.string()),
        "-serial", "stdio",
        "-chardev", fmt::format("socket,id=ctl,path={},server=on,wait=off", ctl), "-device", "isa-serial,chardev=ctl"};
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const pid_t parent = ::getpid();
    const pid_t qemu = ::fork();
    ASSERT_GE(qemu, 0);
    if (qemu == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        const int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::setpgid(0, 0);
        std::vector<char *> a;
        for (auto &s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        ::execv(a[0], a.data());
        ::_exit(127);
    }
    ::close(out[1]);
    const auto boot = Clock::now();

    int ctl_fd = -1;
    for (int i = 0; i < 200 && ctl_fd < 0; ++i) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", ctl.c_str());
        if (::connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0) {
            ctl_fd = fd;
        } else {
            ::close(fd);
            std::this_thread::sleep_for(50ms);
        }
    }
    const auto ack = [&](const std::string &line) {
        const std::string l = line + "\n";
        if (ctl_fd < 0 || ::write(ctl_fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) {
            std::cout << "[vm-lab] could not answer the guest on the control socket\n";
        }
    };

    // 5. Follow the console until the guest powers off, or kill it at the deadline.
    const char *deadline_env = std::getenv("IVD_VM_LAB_DEADLINE_S");
    const auto deadline = boot + std::chrono::seconds(deadline_env != nullptr ? std::atoi(deadline_env) : 600);
    std::string console, pending;
    std::map<std::string, std::pair<std::string, std::string>> results;  // name -> (PASS|FAIL, detail)
    bool done = false, timed_out = false;
    double done_at = 0;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd{out[0], POLLIN, 0};
        const int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) continue;
        char buf[4096];
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;  // QEMU exited (the guest powered off)
        console.append(buf, static_cast<std::size_t>(n));
        pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const auto at = line.find("VMLAB ");
            if (at == std::string::npos) continue;
            line = line.substr(at);
            std::cout << fmt::format("[vm-lab {:6.1f}s] {}\n", seconds_since(boot), redact(line, password));
            std::istringstream ls(line);
            std::string tag, kind, name, verdict;
            ls >> tag >> kind;
            if (kind == "RESULT") {
                ls >> name >> verdict;
                std::string detail;
                std::getline(ls, detail);
                results[name] = {verdict, detail};
            } else if (kind == "REQUEST") {
                ls >> name;
                try {
                    if (name == "drop_portal2") {
                        // The portal stops listening, and every connection to the target is cut from the target
                        // side: the guest's session through portal 1 recovers at once, the one through portal 2
                        // cannot (tgtd cannot tell which connection came through which portal: one peer address).
                        lab.remove_portal(p2);
                        const int dropped = lab.drop_connections(tid);
                        ack(fmt::format("ACK {} ok portal {} removed, {} connection(s) dropped", name, p2.to_string(), dropped));
                    } else if (name == "restore_portal2") {
                        lab.restore_portal(p2);
                        ack(fmt::format("ACK {} ok", name));
                    } else {
                        ack(fmt::format("ACK {} fail unknown action", name));
                    }
                } catch (const std::exception &e) {
                    ack(fmt::format("ACK {} fail {}", name, e.what()));
                }
            } else if (kind == "DONE") {
                done = true;
                done_at = seconds_since(boot);
            }
        }
    }
    if (timed_out) ::kill(qemu, SIGKILL);
    int status = 0;
    const auto reap_until = Clock::now() + 20s;
    while (::waitpid(qemu, &status, WNOHANG) == 0) {
        if (Clock::now() > reap_until) {
            ::kill(qemu, SIGKILL);
            ::waitpid(qemu, &status, 0);
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    ::close(out[0]);
    if (ctl_fd >= 0) ::close(ctl_fd);
    const double run_s = seconds_since(boot);

    // The console as a file for CI artifacts (it is checked below to hold no secret; redacted anyway).
    {
        std::ofstream(IVD_VM_LAB_CONSOLE_LOG) << redact(console, password);
    }
    std::cout << fmt::format("[vm-lab] image {:.1f} s, guest run {:.1f} s (DONE at {:.1f} s), total {:.1f} s; console: {}\n",
                             image_s, run_s, done_at, seconds_since(t0), IVD_VM_LAB_CONSOLE_LOG);

    EXPECT_FALSE(timed_out) << "the guest did not finish within the deadline and was killed; console tail:\n"
                            << redact(tail_lines(console, 60), password);
    EXPECT_TRUE(done) << "no 'VMLAB DONE' line; console tail:\n" << redact(tail_lines(console, 60), password);
    EXPECT_EQ(console.find(password), std::string::npos) << "the CHAP password appeared on the guest console";
    std::string missing;
    for (const char *name : {"connect_lun1", "bytes_lun1", "multipath_paths", "io_after_portal_drop", "path_failed_seen",
                             "path_restored", "connect_lun2", "detach_lun1_keeps_lun2", "disconnect_clean",
                             "no_session_left", "secret_not_in_cmdline", "secret_not_in_logs"}) {
        const auto it = results.find(name);
        if (it == results.end()) {
            missing += std::string(missing.empty() ? "" : ", ") + name;
            continue;
        }
        EXPECT_EQ(it->second.first, "PASS") << name << ":" << redact(it->second.second, password);
    }
    EXPECT_TRUE(missing.empty()) << "missing result line(s) for " << missing << "; console tail:\n"
                                 << redact(tail_lines(console, 40), password);
    ::explicit_bzero(password.data(), password.size());
}
