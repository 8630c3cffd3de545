// Does this QEMU emulator have its iSCSI block driver?
//
// Method: read the emulator binary (and its module) the way QEMU's own loader decides, without running it.
//  1. The binary's DT_NEEDED lists libiscsi.so.*: the driver is built in.
//  2. Otherwise, a modular build (the binary carries its build stamp "qemu_stamp_<hash>") loads the driver
//     from <module dir>/block-iscsi.so on first use. QEMU refuses a module that does not export the same stamp
//     ("Only modules from the same build can be loaded"), so we require the file AND the matching stamp: this
//     catches the half-upgraded host (qemu-system-x86 upgraded, qemu-block-extra not), which a mere
//     file-exists check would call healthy. The module dir is the one compiled into the binary (found as a
//     string in it), or config qemu_module_dir.
//  3. Neither: this QEMU was built without iSCSI.
// Rejected alternatives: `-drive format=help` lists "iscsi" even with the module deleted (it prints QEMU's
// compile-time module table), and `-blockdev driver=help` prints the QAPI enum, also compile-time. Really
// opening an iscsi blockdev is authoritative but spawns QEMU and connects out, and cannot be pointed at a
// different module dir (QEMU always searches its compiled-in one), so tests could not hide the module.
#include "host_facts/elf_file.hpp"
#include "host_facts/host_facts.hpp"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <system_error>

namespace ivd {

namespace {

// Where distributions install QEMU modules (CONFIG_QEMU_MODDIR): Debian/Ubuntu multiarch, Fedora/SUSE,
// RHEL's qemu-kvm, and the upstream default prefixes.
constexpr std::array<const char *, 7> module_dir_candidates = {
    "/usr/lib/x86_64-linux-gnu/qemu", "/usr/lib64/qemu",           "/usr/lib64/qemu-kvm", "/usr/lib/qemu",
    "/usr/local/lib/x86_64-linux-gnu/qemu", "/usr/local/lib64/qemu", "/usr/local/lib/qemu"};

std::string links_libiscsi(const host_facts::ElfFile &elf) {
    for (const std::string &lib : elf.needed()) {
        if (lib.rfind("libiscsi.so", 0) == 0) return lib;
    }
    return {};
}

// The module directory this emulator was built to search: the candidate whose path the binary holds as a
// NUL-terminated string; else the first candidate that exists on disk.
std::string compiled_module_dir(const host_facts::ElfFile &emulator) {
    for (const char *dir : module_dir_candidates) {
        if (emulator.contains(std::string_view(dir, std::char_traits<char>::length(dir) + 1))) return dir;
    }
    std::error_code ec;
    for (const char *dir : module_dir_candidates) {
        if (std::filesystem::is_directory(dir, ec)) return dir;
    }
    return module_dir_candidates[0];
}

}  // namespace

QemuIscsiCheck check_qemu_iscsi(const std::string &emulator_path, const std::string &module_dir) {
    QemuIscsiCheck out;
    auto emulator = host_facts::ElfFile::open(emulator_path);
    if (!emulator) {
        out.reason = fmt::format("cannot inspect the emulator: {}", emulator.error().message);
        return out;
    }
    if (const std::string lib = links_libiscsi(*emulator); !lib.empty()) {
        out.available = true;
        out.reason = fmt::format("{} links {}: iSCSI block driver built in", emulator_path, lib);
        return out;
    }
    const std::string stamp = emulator->find_hex_suffixed("qemu_stamp_");
    if (stamp.empty()) {
        out.reason = fmt::format("{} neither links libiscsi nor loads block modules: this QEMU build has no "
                                 "iSCSI block driver", emulator_path);
        return out;
    }
    const std::string dir = module_dir.empty() ? compiled_module_dir(*emulator) : module_dir;
    out.module = (std::filesystem::path(dir) / "block-iscsi.so").string();
    auto module = host_facts::ElfFile::open(out.module);
    if (!module) {
        out.reason = module.error().status == Status::not_found
                         ? fmt::format("{} loads block drivers as modules, but there is no block-iscsi.so in {}",
                                       emulator_path, dir)
                         : fmt::format("cannot inspect {}: {}", out.module, module.error().message);
        return out;
    }
    if (module->defines_dynamic_symbol(stamp)) {
        out.available = true;
        out.reason = fmt::format("module {} matches the build of {}", out.module, emulator_path);
        return out;
    }
    out.reason = module->defines_dynamic_symbol("qemu_module_dummy")
                     ? fmt::format("{} is from a different QEMU build than {} (QEMU refuses it); install the "
                                   "qemu-block-extra matching the installed QEMU version", out.module, emulator_path)
                     : fmt::format("{} is not a QEMU module", out.module);
    return out;
}

}  // namespace ivd
