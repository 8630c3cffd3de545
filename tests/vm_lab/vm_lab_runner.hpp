// The host side of the real-kernel lab, shared by the vm_lab test and the os-brick benchmark (tests/bench):
// building the guest image, the 0700 stage directory shared with the guest over 9p, and one guest run under QEMU
// with its console followed line by line and host actions answered on the control serial port.
//
//  host                                                  guest (/lab/guest_lab.sh as PID 1, real kernel)
//  TgtdLab on 127.0.0.1:P1 and :P2  <--- slirp --->      10.0.2.2:P1, 10.0.2.2:P2
//  stage dir (9p share "lab", ro)   ---------------->    /lab
//  console pipe (ttyS0)             <----------------    "VMLAB ..." lines (REQUEST <action>, DONE, ...)
//  control socket (ttyS1)           ---------------->    ACK <action> ok|fail
#pragma once

#include "tgtd_lab.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::vmlab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t);
void write_file(const fs::path &p, std::string_view text, mode_t mode = 0600);
// 16 characters: what every initiator accepts for a CHAP secret.
std::string random_password();
// Runs a command to completion; stdout is returned, stderr goes to ours (build progress). Exit status or -1.
int run_capture(const std::vector<std::string> &argv, std::string *out);
// Runs an image build script (build_image.sh or build_bench_image.sh); the image directory it printed last, or
// an empty path when it failed or the image is incomplete.
fs::path build_image(const std::string &script);
// Cinder's connection_info for `lun` behind both portals, as the guest reaches them (10.0.2.2), CHAP on.
// `extra_data`: more members of "data", e.g. R"("addressing_mode":"SAM2")"; `volume_id` empty: "vmlab-lun<lun>".
std::string connection_info(const ivd::testing::TgtdPortal &p1, const ivd::testing::TgtdPortal &p2,
                            const std::string &iqn, int lun, const std::string &user, const std::string &password,
                            const std::string &extra_data = "", const std::string &volume_id = "");
std::string redact(std::string text, const std::string &secret);
std::string tail_lines(const std::string &text, int n);

// A 0700 temporary directory (it holds the CHAP password), removed on destruction unless IVD_VM_LAB_KEEP_STAGE=1.
class Stage {
public:
    Stage();
    ~Stage();
    Stage(const Stage &) = delete;
    Stage &operator=(const Stage &) = delete;
    fs::path dir;
};

struct GuestOptions {
    fs::path image;             // vmlinuz, initrd.img, rootfs.img (booted with -snapshot: never written)
    fs::path stage;             // shared read-only as 9p tag "lab"; must hold guest_lab.sh
    int deadline_s = 600;       // from boot; the guest is killed after it
    std::string accel = "tcg";  // tcg | kvm
    int memory_mb = 1024;
    int nics = 1;               // 2: a second NIC (MAC ...:57) on its own slirp, for iface binding (iscsi_ifaces)
    std::string secret;         // redacted from every echoed line
    std::ostream *echo = nullptr;  // "[vm-lab t s] VMLAB ..." lines go here when set
};

struct GuestRun {
    std::string console;  // everything the guest wrote on ttyS0 (not redacted)
    bool done = false;    // a "VMLAB DONE" line was seen
    bool timed_out = false;
    double run_s = 0, done_at = 0;
};

// Boots the guest and follows its console until it powers off (or the deadline). Every line holding "VMLAB " is
// passed (from "VMLAB" on, not redacted) to on_line; "VMLAB REQUEST <action>" lines go to on_request, whose answer
// (a whole "ACK <action> ok|fail ..." line) is written to the control serial port.
GuestRun run_guest(const GuestOptions &options, const std::function<void(const std::string &line)> &on_line,
                   const std::function<std::string(const std::string &action)> &on_request);

}  // namespace ivd::vmlab
