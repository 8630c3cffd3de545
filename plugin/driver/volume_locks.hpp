// Serialises calls for the same volume while letting different volumes proceed in parallel.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ivd {

class VolumeLocks {
    struct Entry {
        std::mutex mutex;
        int users = 0;
    };

public:
    class Guard {
    public:
        Guard(VolumeLocks &owner, std::string key, Entry *entry);
        Guard(const Guard &) = delete;
        Guard &operator=(const Guard &) = delete;
        ~Guard();

    private:
        VolumeLocks &owner_;
        std::string key_;
        Entry *entry_;
    };

    Guard lock(const std::string &key);
    std::size_t size() const;  // entries currently held or waited for

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace ivd
