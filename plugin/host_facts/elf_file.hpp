// Read-only look into an ELF64 file (the QEMU emulator, its block modules): dynamic dependencies, exported
// symbols, embedded strings. Never executes or loads anything.
#pragma once

#include "core/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::host_facts {

class ElfFile {
public:
    // Maps `path` read-only; fails (not_found / unsupported / backend) when absent, unreadable or not ELF64.
    static Result<ElfFile> open(const std::string &path);

    ElfFile(ElfFile &&other) noexcept;
    ElfFile &operator=(ElfFile &&other) noexcept;
    ElfFile(const ElfFile &) = delete;
    ElfFile &operator=(const ElfFile &) = delete;
    ~ElfFile();

    // DT_NEEDED entries ("libiscsi.so.7").
    std::vector<std::string> needed() const;
    // True when the dynamic symbol table defines (not merely references) `name`.
    bool defines_dynamic_symbol(std::string_view name) const;
    // True when the bytes of `needle` occur anywhere in the file (string constants in .rodata).
    bool contains(std::string_view needle) const;
    // The first occurrence of `prefix` followed by [0-9a-f]+, e.g. "qemu_stamp_f1b4..."; empty when none.
    std::string find_hex_suffixed(std::string_view prefix) const;

private:
    ElfFile(const unsigned char *data, std::size_t size) : data_(data), size_(size) {}
    const unsigned char *data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace ivd::host_facts
