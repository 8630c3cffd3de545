// Stand-ins for multipath-tools: `multipathd add path DEV` groups paths with the same WWID into a dm-N under
// DIR/sys/block; `multipath -a WWID` records the WWID; `multipath -f MAP` flushes (removes) a map.
#include "sim_common.hpp"

#include <iostream>

using namespace ivd::simhost;

namespace {

std::optional<fs::path> find_map(const Sim &sim, const std::string &name) {
    std::error_code ec;
    for (fs::directory_iterator it(sim.sys() / "block", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.rfind("dm-", 0) == 0 && read_file(it->path() / "dm/name") == name) return it->path();
    }
    return std::nullopt;
}

int add_path(const Sim &sim, const std::string &device) {
    if (fault(sim, "multipathd_down")) {
        std::cerr << "ux_socket_connect: Connection refused\n";
        return 1;
    }
    const std::string name = fs::path(device).filename().string();
    TreeLock lock(sim);
    const fs::path block = sim.sys() / "block" / name;
    std::error_code ec;
    if (!fs::exists(block, ec)) {
        std::cout << "fail\n";
        return 1;
    }
    const std::string wwid = wwid_from_sysfs(read_file(block / "device/wwid"));
    if (wwid.empty()) {
        std::cout << "fail\n";  // multipathd cannot group a path without a WWID
        return 1;
    }
    auto map = find_map(sim, wwid);
    if (!map) {
        const std::string dm = "dm-" + std::to_string(next_number(sim, "dm"));
        const fs::path d = sim.sys() / "devices/virtual/block" / dm;
        write_file(d / "dm/name", wwid);
        write_file(d / "dm/uuid", "mpath-" + wwid);
        fs::create_directories(d / "slaves");
        fs::create_directories(d / "holders");
        symlink_to(d, sim.sys() / "block" / dm);
        write_file(sim.dev() / dm, "");
        symlink_to("../" + dm, sim.dev() / "mapper" / wwid);
        map = sim.sys() / "block" / dm;
    }
    const std::string dm = map->filename().string();
    symlink_to(block, *map / "slaves" / name);
    symlink_to(*map, block / "holders" / dm);
    std::cout << "ok\n";
    return 0;
}

int flush(const Sim &sim, const std::string &name) {
    if (fault(sim, "flush_fail")) {
        std::cerr << name << ": map in use\n";
        return 1;
    }
    TreeLock lock(sim);
    auto map = find_map(sim, name);
    if (!map) {
        std::cerr << name << ": no map\n";
        return 1;
    }
    const std::string dm = map->filename().string();
    std::error_code ec;
    for (fs::directory_iterator it(*map / "slaves", ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code e2;
        fs::remove(sim.sys() / "block" / it->path().filename() / "holders" / dm, e2);
    }
    fs::remove(sim.dev() / "mapper" / name, ec);
    fs::remove(sim.dev() / dm, ec);
    fs::remove_all(sim.sys() / "devices/virtual/block" / dm, ec);
    fs::remove(sim.sys() / "block" / dm, ec);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const Sim sim = open_sim(argc, argv);
    const std::string tool = fs::path(argv[0]).filename().string();
    std::vector<std::string> a(argv + 1, argv + argc);
    if (tool == "multipathd") {
        if (a.size() == 3 && a[0] == "add" && a[1] == "path") return add_path(sim, a[2]);
        std::cerr << "multipathd (simulated): unsupported command\n";
        return 1;
    }
    if (a.size() == 2 && a[0] == "-a") {
        write_file(sim.dir / "etc/multipath/wwids", read_file(sim.dir / "etc/multipath/wwids") + "\n/" + a[1] + "/");
        std::cout << "wwid '" << a[1] << "' added\n";
        return 0;
    }
    if (a.size() == 2 && a[0] == "-f") return flush(sim, a[1]);
    std::cerr << "multipath (simulated): unsupported arguments\n";
    return 1;
}
