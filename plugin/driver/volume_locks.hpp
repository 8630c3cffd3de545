// Serialises calls for the same volume while letting different volumes proceed in parallel.
#pragma once

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
        Guard(const Guard &) = delete;
        Guard &operator=(const Guard &) = delete;
        ~Guard();

    private:
        friend class VolumeLocks;  // only lock() makes one: key_ must be the map's own key
        Guard(VolumeLocks &owner, const std::string &key, Entry *entry);

        VolumeLocks &owner_;
        const std::string &key_;  // the map's own key: elements stay put while users > 0
        Entry *entry_;
    };

    Guard lock(const std::string &key);
    std::size_t size() const;  // entries currently held or waited for

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;  // node-based: an Entry never moves
};

}  // namespace ivd
