// The demo: a real iSCSI target (tgtd, CHAP on) and a real TCG VM (libvirtd + QEMU); the volume is attached
// through volume-host and the plugin, read THROUGH QEMU, detached; then everything the demo started is stopped.
#include "test_support.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <json/json.h>
#include <pugixml.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

namespace fs = std::filesystem;

namespace {

const std::string message = "Hello from an iSCSI volume, read back through QEMU's initiator!\n";

std::string random_password() {
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::random_device rd;
    std::string pw;
    for (int i = 0; i < 16; ++i) pw += alphabet[rd() % (sizeof alphabet - 1)];
    return pw;
}

std::string indented(const std::string &xml) {
    pugi::xml_document doc;
    if (!doc.load_string(xml.c_str())) return xml;
    std::ostringstream out;
    doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
    return out.str();
}

using ivd::testing::slurp;

void write_private(const fs::path &p, const std::string &text) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        throw std::runtime_error("cannot write " + p.string());
    }
    ::close(fd);
}

struct Run {
    int exit_code;
    std::string out;
    std::string err;
};

Run volume_host(const fs::path &dir, const std::string &args) {
    const std::string cmd = std::string(VOLUME_HOST_PATH) + " --config " + (dir / "volume-host.conf").string() + " " +
                            args + " >" + (dir / "out").string() + " 2>" + (dir / "err").string() + " </dev/null";
    const int status = std::system(cmd.c_str());
    return Run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "out"), slurp(dir / "err")};
}

void hexdump(const std::string &bytes) {
    for (std::size_t off = 0; off < bytes.size(); off += 16) {
        std::printf("  %08zx  ", off);
        for (std::size_t i = off; i < off + 16; ++i) {
            if (i < bytes.size()) std::printf("%02x ", static_cast<unsigned char>(bytes[i]));
            else std::printf("   ");
        }
        std::printf(" |");
        for (std::size_t i = off; i < off + 16 && i < bytes.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(bytes[i]);
            std::printf("%c", c >= 0x20 && c < 0x7f ? c : '.');
        }
        std::printf("|\n");
    }
}

int run_demo() {
    const std::string password = random_password();
    std::cout << "== starting tgtd on loopback with a 64 MiB demo volume (CHAP on)\n";
    ivd::testing::TgtdLab tgtd;
    const std::string iqn = tgtd.make_iqn("demo-volume");
    const int tid = tgtd.create_target(iqn);
    const auto lun = tgtd.add_lun(tid, 1, 64ull << 20);
    {
        std::fstream backing(lun.backing_file, std::ios::in | std::ios::out | std::ios::binary);
        backing.write(message.data(), static_cast<std::streamsize>(message.size()));
    }
    tgtd.add_account("demo", password);  // through tgtd's management socket: never on a command line
    tgtd.bind_account(tid, "demo");
    std::cout << "   target " << iqn << " LUN 1 at " << tgtd.portal().to_string() << "\n";

    std::cout << "== making sure libvirtd runs and starting a tiny TCG domain\n";
    ivd::testing::LibvirtLab libvirt;
    std::cout << "   domain " << libvirt.domain_name() << " on " << libvirt.uri() << "\n";

    const fs::path dir = fs::temp_directory_path() / ("volume-demo-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all);
    std::ofstream(dir / "volume-host.conf") << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH
                                            << "\n\n[libvirt]\nconnection_uri = " << libvirt.uri()
                                            << "\n\n[iscsi]\npath = network\n";
    Json::Value ci;
    ci["driver_volume_type"] = "iscsi";
    ci["data"]["target_portal"] = tgtd.portal().to_string();
    ci["data"]["target_iqn"] = iqn;
    ci["data"]["target_lun"] = 1;
    ci["data"]["volume_id"] = "demo-volume-1";
    ci["data"]["auth_method"] = "CHAP";
    ci["data"]["auth_username"] = "demo";
    ci["data"]["auth_password"] = password;
    write_private(dir / "connection_info.json", Json::writeString(Json::StreamWriterBuilder(), ci));
    std::ofstream(dir / "connector.json") << R"({"initiator":"iqn.1993-08.org.debian:01:volume-demo","multipath":false})";

    int rc = 0;
    std::cout << "== volume-host connect --attach " << libvirt.domain_name() << "\n";
    auto connect = volume_host(dir, "connect " + (dir / "connection_info.json").string() + " " +
                                        (dir / "connector.json").string() + " --attach " + libvirt.domain_name());
    if (connect.exit_code != 0) {
        std::cerr << "connect failed (exit " << connect.exit_code << "): " << connect.err << "\n";
        rc = 1;
    } else {
        write_private(dir / "device_info.json", connect.out);
        Json::Value info;
        std::istringstream(connect.out) >> info;
        std::cout << "   portal " << info["portal"].asString() << ", libvirt secret " << info["secret_uuid"].asString()
                  << " (private, usage " << info["secret_usage"].asString() << ")\n";
        std::cout << "   disk XML (as attached; the password lives only in the secret):\n\n"
                  << indented(info["disk_xml"].asString()) << "\n";
        const std::string dev = info["dev"].asString();
        const std::string bytes = libvirt.read_disk_bytes(dev, 0, 64);
        std::cout << "== the first 64 bytes of guest disk " << dev << ", read through QEMU (NBD export of its block node):\n";
        hexdump(bytes);
        if (bytes.compare(0, message.size(), message) != 0) {
            std::cerr << "the bytes read through QEMU are not the volume's bytes\n";
            rc = 1;
        }
        if ((connect.out + connect.err).find(password) != std::string::npos) {
            std::cerr << "the password appeared in volume-host's output\n";
            rc = 1;
        }
        std::cout << "== volume-host disconnect --detach " << libvirt.domain_name() << "\n";
        auto disconnect = volume_host(dir, "disconnect " + (dir / "connection_info.json").string() + " " +
                                               (dir / "device_info.json").string() + " --detach " + libvirt.domain_name());
        if (disconnect.exit_code != 0) {
            std::cerr << "disconnect failed: " << disconnect.err << "\n";
            rc = 1;
        }
        const auto secrets = ivd::testing::run_command({"virsh", "-c", libvirt.uri(), "secret-list"});
        const bool secret_left = secrets.out.find(info["secret_uuid"].asString()) != std::string::npos;
        std::cout << "   detached; the demo's libvirt secret " << (secret_left ? "is STILL DEFINED" : "is gone") << "\n";
        if (secret_left) rc = 1;
    }
    fs::remove_all(dir);  // connection_info held the password: remove it with everything else
    std::cout << "== stopping what the demo started (domain, tgtd" << ", libvirtd if the demo started it)\n";
    return rc;
}

}  // namespace

int main() {
    try {
        const int rc = run_demo();
        std::cout << (rc == 0 ? "demo finished: OK\n" : "demo FAILED\n");
        return rc;
    } catch (const std::exception &e) {
        std::cerr << "demo failed: " << e.what() << "\n";
        return 1;
    }
}
