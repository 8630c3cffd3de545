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
// The image, stage and QEMU plumbing is vm_lab_runner (shared with tests/bench's os-brick comparison); staging and
// result checks shared with the lifecycle test (vm_lab_lifecycle_test.cpp) are vm_lab_support.
#include "vm_lab_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>

namespace fs = std::filesystem;
using namespace ivd::vmlab;

TEST(VmLab, HostPathOnRealKernel) {
    const auto t0 = Clock::now();

    // 1. The guest image (cached; built once per key).
    const fs::path image = build_image(IVD_VM_LAB_BUILD_IMAGE);
    ASSERT_FALSE(image.empty()) << "build_image.sh failed (see its stderr above)";
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
    stage_guest(stage.dir, "guest_lab.sh");
    write_file(stage.dir / "lab.env",
               fmt::format("PORTAL1=10.0.2.2:{}\nPORTAL2=10.0.2.2:{}\nIQN={}\nINITIATOR=iqn.2003-01.org.ivd-lab:vmlab-guest\n",
                           p1.port, p2.port, iqn));
    write_file(stage.dir / "ci-lun1.json", connection_info(p1, p2, iqn, 1, user, password));
    write_file(stage.dir / "ci-lun2.json", connection_info(p1, p2, iqn, 2, user, password));
    write_file(stage.dir / "chap.secret", password + "\n");
    write_file(stage.dir / "lun1.head", std::string(lun1.head.begin(), lun1.head.end()));
    write_file(stage.dir / "lun2.head", std::string(lun2.head.begin(), lun2.head.end()));

    // 4. The guest under QEMU (TCG); results come as console lines, host actions are answered on the control port.
    const char *deadline_env = std::getenv("IVD_VM_LAB_DEADLINE_S");
    ResultLines lines;
    const auto on_request = [&](const std::string &name) -> std::string {
        try {
            if (name == "drop_portal2") {
                // The portal stops listening, and every connection to the target is cut from the target
                // side: the guest's session through portal 1 recovers at once, the one through portal 2
                // cannot (tgtd cannot tell which connection came through which portal: one peer address).
                lab.remove_portal(p2);
                const int dropped = lab.drop_connections(tid);
                return fmt::format("ACK {} ok portal {} removed, {} connection(s) dropped", name, p2.to_string(), dropped);
            }
            if (name == "restore_portal2") {
                lab.restore_portal(p2);
                return fmt::format("ACK {} ok", name);
            }
            return fmt::format("ACK {} fail unknown action", name);
        } catch (const std::exception &e) {
            return fmt::format("ACK {} fail {}", name, e.what());
        }
    };
    const GuestRun run = run_guest(GuestOptions{.image = image,
                                                .stage = stage.dir,
                                                .deadline_s = deadline_env != nullptr ? std::atoi(deadline_env) : 600,
                                                .secret = password,
                                                .echo = &std::cout},
                                   std::ref(lines), on_request);
    std::cout << fmt::format("[vm-lab] image {:.1f} s, guest run {:.1f} s (DONE at {:.1f} s), total {:.1f} s; console: {}\n",
                             image_s, run.run_s, run.done_at, seconds_since(t0), IVD_VM_LAB_CONSOLE_LOG);
    expect_guest_run(run, lines,
                     {"connect_lun1", "bytes_lun1", "multipath_paths", "record_settings", "io_after_portal_drop", "path_failed_seen",
                      "path_restored", "connect_lun2", "detach_lun1_keeps_lun2", "disconnect_clean", "no_session_left",
                      "secret_not_in_cmdline", "secret_not_in_logs"},
                     password, IVD_VM_LAB_CONSOLE_LOG);
    ::explicit_bzero(password.data(), password.size());
}
