// The real-kernel lab, second boot: the host path's lifecycle (issue 17) on a real kernel. Same plumbing as
// HostPathOnRealKernel (vm_lab_test.cpp): tgtd here with two portals and CHAP, the Debian guest under QEMU TCG,
// binaries and inputs on the 9p stage. The guest (guest_lifecycle.sh) runs tests/vm_lab/lifecycle/NN-name.sh in
// order; each file declares its results on "# vmlab-results:" lines, read here, so a scenario is added as a file.
//
// Host actions the scenarios may request ("VMLAB REQUEST <action>", answered on the control port):
//   drop_portal2     portal 2 stops listening and every connection to the target is cut
//   restore_portal2  portal 2 listens again
//   grow_lun<N>      LU N grows to twice its size: deleted and added again over its backing file made bigger, with
//                    the same tid and LUN, so its VPD 0x83 identity (the WWID) stays the same
//
// Environment: IVD_VM_LAB_DEADLINE_S (guest run deadline, default 1800), IVD_VM_LAB_CHURN_CYCLES (50) for
// quick local runs, IVD_VM_LAB_SCENARIOS (comma-separated NN prefixes, e.g. "30,70": only those scenario files are
// staged, run and expected; unset or empty: all), IVD_VM_LAB_KEEP_STAGE=1 (keeps the password: debugging only).
#include "vm_lab_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>

namespace fs = std::filesystem;
using namespace ivd::vmlab;
using ivd::testing::TgtdLun;

namespace {

int env_int(const char *name, int fallback) {
    const char *v = std::getenv(name);
    return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

// The LUs the scenarios use (lab.env names them): one that grows, one for the connect cycles, one held open (and
// the ready scenario's anchor), and one above 255 that tgtd exports in flat space addressing only.
constexpr int lun_extend = 1, lun_cycle = 2, lun_hold = 3, lun_high = 300;
constexpr std::uint64_t lu_size = 16ull << 20;

// Deletes LU `lun` and adds it again over the same backing file at `new_size`: tgtd reads a file's size only when
// the LU is created. Same tid and LUN: the same serial and NAA designators.
std::string grow_lu(ivd::testing::TgtdLab &lab, TgtdLun &lu, std::uint64_t new_size) {
    fs::resize_file(lu.backing_file, new_size);
    const std::string tid = std::to_string(lu.tid), lun = std::to_string(lu.lun);
    lab.tgtadm({"--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", tid, "--lun", lun});
    lab.tgtadm({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", lun, "-b",
                lu.backing_file});
    lu.size_bytes = new_size;
    return fmt::format("LU {} is {} bytes", lun, new_size);
}

// Copies the scenario files IVD_VM_LAB_SCENARIOS selects (by their "NN-" prefix; all when unset) to `to`.
void stage_scenarios(const fs::path &from, const fs::path &to) {
    const char *env = std::getenv("IVD_VM_LAB_SCENARIOS");
    std::vector<std::string> wanted;
    for (std::string list = env != nullptr ? env : "", item; !list.empty();) {
        const auto comma = list.find(',');
        item = list.substr(0, comma);
        list = comma == std::string::npos ? "" : list.substr(comma + 1);
        if (!item.empty()) wanted.push_back(item + "-");
    }
    fs::create_directories(to);
    for (const auto &e : fs::directory_iterator(from)) {
        const std::string name = e.path().filename().string();
        const bool selected = wanted.empty() || std::any_of(wanted.begin(), wanted.end(), [&](const std::string &w) {
                                  return name.rfind(w, 0) == 0;
                              });
        if (selected) fs::copy_file(e.path(), to / name);
    }
}

}  // namespace

TEST(VmLab, HostPathLifecycle) {
    const auto t0 = Clock::now();
    const fs::path image = build_image(IVD_VM_LAB_BUILD_IMAGE);
    ASSERT_FALSE(image.empty()) << "build_image.sh failed (see its stderr above)";
    const double image_s = seconds_since(t0);

    ivd::testing::TgtdLab lab(ivd::testing::TgtdLabOptions{.address = "127.0.0.1"});
    const auto p1 = lab.portal();
    const auto p2 = lab.add_portal();
    const std::string iqn = lab.make_iqn("vmlab-lifecycle");
    const int tid = lab.create_target(iqn);
    std::map<int, TgtdLun> lus;
    for (const int lun : {lun_extend, lun_cycle, lun_hold, lun_high}) lus[lun] = lab.add_lun(tid, lun, lu_size);
    const std::string user = "vmlab-user";
    std::string password = random_password();
    lab.add_account(user, password);
    lab.bind_account(tid, user);

    Stage stage;
    stage_guest(stage.dir, "guest_lifecycle.sh");
    const fs::path scenarios = stage.dir / "lifecycle";  // the ones selected (IVD_VM_LAB_SCENARIOS)
    stage_scenarios(fs::path(IVD_VM_LAB_DIR) / "lifecycle", scenarios);
    write_file(stage.dir / "lab.env",
               fmt::format("PORTAL1=10.0.2.2:{}\nPORTAL2=10.0.2.2:{}\nIQN={}\nINITIATOR=iqn.2003-01.org.ivd-lab:vmlab-guest\n"
                           "LUN_EXTEND={}\nLUN_EXTEND_NEW_BYTES={}\nLUN_CYCLE={}\nLUN_HOLD={}\nLUN_HIGH={}\n"
                           "CHURN_CYCLES={}\n",
                           p1.port, p2.port, iqn, lun_extend, 2 * lu_size, lun_cycle, lun_hold, lun_high,
                           env_int("IVD_VM_LAB_CHURN_CYCLES", 50)));
    for (const auto &[lun, lu] : lus) {
        // As Cinder sends it for a LUN above 255 on an array that addresses such LUNs flat (tgtd does).
        const std::string extra = lun > 255 ? R"("addressing_mode":"SAM2")" : "";
        write_file(stage.dir / fmt::format("ci-lun{}.json", lun), connection_info(p1, p2, iqn, lun, user, password, extra));
        write_file(stage.dir / fmt::format("lun{}.head", lun), std::string(lu.head.begin(), lu.head.end()));
    }
    write_file(stage.dir / "chap.secret", password + "\n");

    // The host actions, by name (grow_lun<N> for each LU).
    std::map<std::string, std::function<std::string()>> actions{
        {"drop_portal2",
         [&] {
             lab.remove_portal(p2);
             return fmt::format("portal {} removed, {} connection(s) dropped", p2.to_string(), lab.drop_connections(tid));
         }},
        {"restore_portal2",
         [&] {
             lab.restore_portal(p2);
             return fmt::format("portal {} listens again", p2.to_string());
         }},
    };
    for (auto &[lun, lu] : lus) {
        actions[fmt::format("grow_lun{}", lun)] = [&lab, &lu = lu] { return grow_lu(lab, lu, 2 * lu.size_bytes); };
    }
    const auto on_request = [&](const std::string &name) -> std::string {
        const auto it = actions.find(name);
        if (it == actions.end()) return fmt::format("ACK {} fail unknown action", name);
        try {
            return fmt::format("ACK {} ok {}", name, it->second());
        } catch (const std::exception &e) {
            return fmt::format("ACK {} fail {}", name, e.what());
        }
    };

    ResultLines lines;
    const GuestRun run = run_guest(GuestOptions{.image = image,
                                                .stage = stage.dir,
                                                .deadline_s = env_int("IVD_VM_LAB_DEADLINE_S", 1800),
                                                .nics = 2,  // 80-two-nics.sh binds an iface to each
                                                .secret = password,
                                                .echo = &std::cout},
                                   std::ref(lines), on_request);
    std::cout << fmt::format("[vm-lab] lifecycle: image {:.1f} s, guest run {:.1f} s (DONE at {:.1f} s), total {:.1f} s; "
                             "console: {}\n",
                             image_s, run.run_s, run.done_at, seconds_since(t0), IVD_VM_LAB_LIFECYCLE_CONSOLE_LOG);
    std::vector<std::string> expected = declared_results(scenarios);
    ASSERT_FALSE(expected.empty()) << "no '# vmlab-results:' line in " << scenarios;
    expected.insert(expected.end(), {"secret_not_in_cmdline", "secret_not_in_logs"});
    expect_guest_run(run, lines, expected, password, IVD_VM_LAB_LIFECYCLE_CONSOLE_LOG);
    ::explicit_bzero(password.data(), password.size());
}
