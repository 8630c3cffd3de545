#include "host_facts/elf_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ivd::host_facts {

namespace {

// Every offset below comes from the file: check before touching memory.
bool in_bounds(std::size_t size, std::uint64_t offset, std::uint64_t length) {
    return offset <= size && length <= size - offset;
}

struct Sections {
    const Elf64_Shdr *table = nullptr;
    std::size_t count = 0;
};

Sections sections_of(const unsigned char *data, std::size_t size) {
    const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(data);
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || !in_bounds(size, eh->e_shoff, std::uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr))) {
        return {};
    }
    return {reinterpret_cast<const Elf64_Shdr *>(data + eh->e_shoff), eh->e_shnum};
}

// NUL-terminated string at `offset` of a string table section, or empty when out of range.
std::string_view string_at(const unsigned char *data, std::size_t size, const Elf64_Shdr &strtab, std::uint64_t offset) {
    if (!in_bounds(size, strtab.sh_offset, strtab.sh_size) || offset >= strtab.sh_size) return {};
    const char *begin = reinterpret_cast<const char *>(data + strtab.sh_offset + offset);
    const std::size_t max = strtab.sh_size - offset;
    return {begin, ::strnlen(begin, max)};
}

}  // namespace

Result<ElfFile> ElfFile::open(const std::string &path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        return make_error(err == ENOENT ? Status::not_found : Status::backend,
                          fmt::format("cannot open {}: {}", path, std::strerror(err)));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
        ::close(fd);
        return make_error(Status::unsupported, fmt::format("{} is not a regular ELF file", path));
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void *map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return make_error(Status::backend, fmt::format("cannot map {}: {}", path, std::strerror(errno)));
    ElfFile file(static_cast<const unsigned char *>(map), size);
    const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(file.data_);
    if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB) {
        return make_error(Status::unsupported, fmt::format("{} is not a 64-bit little-endian ELF binary", path));
    }
    return file;
}

ElfFile::ElfFile(ElfFile &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ElfFile &ElfFile::operator=(ElfFile &&other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) ::munmap(const_cast<unsigned char *>(data_), size_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

ElfFile::~ElfFile() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char *>(data_), size_);
}

std::vector<std::string> ElfFile::needed() const {
    std::vector<std::string> out;
    const Sections s = sections_of(data_, size_);
    for (std::size_t i = 0; i < s.count; ++i) {
        const Elf64_Shdr &dyn = s.table[i];
        if (dyn.sh_type != SHT_DYNAMIC || dyn.sh_link >= s.count || !in_bounds(size_, dyn.sh_offset, dyn.sh_size)) continue;
        const auto *entries = reinterpret_cast<const Elf64_Dyn *>(data_ + dyn.sh_offset);
        for (std::size_t j = 0; j < dyn.sh_size / sizeof(Elf64_Dyn) && entries[j].d_tag != DT_NULL; ++j) {
            if (entries[j].d_tag != DT_NEEDED) continue;
            const auto name = string_at(data_, size_, s.table[dyn.sh_link], entries[j].d_un.d_val);
            if (!name.empty()) out.emplace_back(name);
        }
    }
    return out;
}

bool ElfFile::defines_dynamic_symbol(std::string_view name) const {
    const Sections s = sections_of(data_, size_);
    for (std::size_t i = 0; i < s.count; ++i) {
        const Elf64_Shdr &symtab = s.table[i];
        if (symtab.sh_type != SHT_DYNSYM || symtab.sh_link >= s.count || !in_bounds(size_, symtab.sh_offset, symtab.sh_size)) {
            continue;
        }
        const auto *syms = reinterpret_cast<const Elf64_Sym *>(data_ + symtab.sh_offset);
        for (std::size_t j = 0; j < symtab.sh_size / sizeof(Elf64_Sym); ++j) {
            if (syms[j].st_shndx == SHN_UNDEF) continue;
            if (string_at(data_, size_, s.table[symtab.sh_link], syms[j].st_name) == name) return true;
        }
    }
    return false;
}

bool ElfFile::contains(std::string_view needle) const {
    return !needle.empty() && ::memmem(data_, size_, needle.data(), needle.size()) != nullptr;
}

std::string ElfFile::find_hex_suffixed(std::string_view prefix) const {
    const unsigned char *from = data_;
    const unsigned char *limit = data_ + size_;
    while (from < limit) {
        const auto *at = static_cast<const unsigned char *>(
            ::memmem(from, static_cast<std::size_t>(limit - from), prefix.data(), prefix.size()));
        if (at == nullptr) return {};
        const unsigned char *end = at + prefix.size();
        while (end < limit && ((*end >= '0' && *end <= '9') || (*end >= 'a' && *end <= 'f'))) ++end;
        if (end != at + prefix.size()) return {reinterpret_cast<const char *>(at), static_cast<std::size_t>(end - at)};
        from = at + 1;
    }
    return {};
}

}  // namespace ivd::host_facts
