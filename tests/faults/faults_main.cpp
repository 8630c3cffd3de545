// The faults binary's main(): runs the gtest suites, or acts as the "host that crashes right after connect"
// child (--crash-after-connect) that NetworkFaults starts.
#include "driver_loader.hpp"
#include "fault_fixtures.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

using namespace ivd::faults;

// The crash child: loads the module in a fresh process, connects, and dies at once (no disconnect, no destroy,
// no dlclose), as a host killed right after connect_volume returned would.
int crash_after_connect(const char *ci_path, const char *uri) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    auto module = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
    if (!module) return 3;
    auto driver = volume_host::DriverInstance::create(*module, std::string(R"({"path":"network","libvirt_uri":")") + uri + "\"}");
    if (!driver) return 4;
    const std::string ci = slurp(ci_path);
    char *out = nullptr;
    const auto rc = (*driver)->table().connect_volume((*driver)->handle(), ci.c_str(),
                                                      (R"({"initiator":")" + initiator + "\"}").c_str(),
                                                      R"({"bus":"scsi","dev":"sdw"})", 0, &out);
    ::_exit(rc == VD_OK ? 42 : 5);
}

int main(int argc, char **argv) {
    if (argc == 4 && std::string(argv[1]) == "--crash-after-connect") return crash_after_connect(argv[2], argv[3]);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
