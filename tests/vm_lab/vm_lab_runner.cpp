#include "vm_lab_runner.hpp"

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

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <stdexcept>
#include <thread>

namespace ivd::vmlab {

using namespace std::chrono_literals;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void write_file(const fs::path &p, std::string_view text, mode_t mode) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + p.string());
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + p.string());
}

std::string random_password() {
    static constexpr char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::random_device rd;
    std::string s;
    for (int i = 0; i < 16; ++i) s += alphabet[rd() % (sizeof alphabet - 1)];
    return s;
}

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

fs::path build_image(const std::string &script) {
    std::string out;
    if (run_capture({script}, &out) != 0) return {};
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const auto nl = out.rfind('\n');
    const fs::path image = out.substr(nl == std::string::npos ? 0 : nl + 1);
    return fs::exists(image / "COMPLETE") ? image : fs::path{};
}

std::string connection_info(const ivd::testing::TgtdPortal &p1, const ivd::testing::TgtdPortal &p2,
                            const std::string &iqn, int lun, const std::string &user, const std::string &password,
                            const std::string &extra_data, const std::string &volume_id) {
    const auto g1 = fmt::format("10.0.2.2:{}", p1.port), g2 = fmt::format("10.0.2.2:{}", p2.port);
    const std::string id = volume_id.empty() ? fmt::format("vmlab-lun{}", lun) : volume_id;
    return fmt::format(R"({{"driver_volume_type":"iscsi","data":{{"volume_id":"{}",)"
                       R"("target_portals":["{}","{}"],"target_iqns":["{}","{}"],"target_luns":[{},{}],)"
                       R"("auth_method":"CHAP","auth_username":"{}","auth_password":"{}"{}{}}}}})",
                       id, g1, g2, iqn, iqn, lun, lun, user, password, extra_data.empty() ? "" : ",", extra_data);
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

Stage::Stage() {
    char tmpl[] = "/tmp/ivd-vmlab-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    ::chmod(tmpl, 0700);
}

Stage::~Stage() {
    if (std::getenv("IVD_VM_LAB_KEEP_STAGE") != nullptr) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
}

GuestRun run_guest(const GuestOptions &options, const std::function<void(const std::string &line)> &on_line,
                   const std::function<std::string(const std::string &action)> &on_request) {
    // QEMU, console on a pipe, control serial on a unix socket.
    const std::string ctl = (options.stage / "ctl.sock").string();
    const std::string append = "root=/dev/vda rw console=ttyS0 init=/sbin/vmlab-init quiet panic=-1";
    std::vector<std::string> argv = {
        "/usr/bin/qemu-system-x86_64", "-accel", options.accel, "-m", std::to_string(options.memory_mb), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", (options.image / "vmlinuz").string(), "-initrd", (options.image / "initrd.img").string(),
        "-append", append,
        "-drive", fmt::format("file={},if=virtio,format=raw,snapshot=on", (options.image / "rootfs.img").string()),
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
        "-virtfs", fmt::format("local,path={},mount_tag=lab,security_model=none,readonly=on", options.stage.string()),
        "-serial", "stdio",
        "-chardev", fmt::format("socket,id=ctl,path={},server=on,wait=off", ctl), "-device", "isa-serial,chardev=ctl"};
    // A second NIC on a slirp of its own: the same 10.0.2.0/24, whose 10.0.2.2 is this host's loopback too
    // (guest_stack.sh gives it 10.0.2.16 with a higher route metric, so only sockets bound to it use it).
    if (options.nics > 1) {
        argv.insert(argv.end(), {"-netdev", "user,id=n1", "-device", "virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57"});
    }
    if (options.accel == "kvm") argv.insert(argv.begin() + 3, {"-cpu", "host"});
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    const pid_t parent = ::getpid();
    const pid_t qemu = ::fork();
    if (qemu < 0) throw std::runtime_error("fork failed");
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
    GuestRun run;

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
            if (options.echo != nullptr) *options.echo << "[vm-lab] could not answer the guest on the control socket\n";
        }
    };

    // Follow the console until the guest powers off, or kill it at the deadline.
    const auto deadline = boot + std::chrono::seconds(options.deadline_s);
    std::string pending;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            run.timed_out = true;
            break;
        }
        pollfd pfd{out[0], POLLIN, 0};
        const int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) continue;
        char buf[4096];
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;  // QEMU exited (the guest powered off)
        run.console.append(buf, static_cast<std::size_t>(n));
        pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const auto at = line.find("VMLAB ");
            if (at == std::string::npos) continue;
            line = line.substr(at);
            if (options.echo != nullptr) {
                *options.echo << fmt::format("[vm-lab {:6.1f}s] {}\n", seconds_since(boot), redact(line, options.secret))
                              << std::flush;
            }
            if (line.rfind("VMLAB REQUEST ", 0) == 0) {
                std::string action = line.substr(14);
                action = action.substr(0, action.find(' '));
                ack(on_request(action));
            } else if (line.rfind("VMLAB DONE", 0) == 0) {
                run.done = true;
                run.done_at = seconds_since(boot);
            }
            on_line(line);
        }
    }
    if (run.timed_out) ::kill(qemu, SIGKILL);
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
    run.run_s = seconds_since(boot);
    return run;
}

}  // namespace ivd::vmlab
