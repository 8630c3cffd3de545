#include "driver/volume_locks.hpp"

namespace ivd {

VolumeLocks::Guard::Guard(VolumeLocks &owner, std::string key, Entry *entry)
    : owner_(owner), key_(std::move(key)), entry_(entry) {
    entry_->mutex.lock();
}

VolumeLocks::Guard::~Guard() {
    entry_->mutex.unlock();
    const std::lock_guard<std::mutex> lock(owner_.mutex_);
    if (--entry_->users == 0) owner_.entries_.erase(key_);  // keep the map as small as the work in flight
}

VolumeLocks::Guard VolumeLocks::lock(const std::string &key) {
    Entry *entry = nullptr;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        auto &slot = entries_[key];
        if (!slot) slot = std::make_unique<Entry>();
        ++slot->users;
        entry = slot.get();
    }
    return Guard(*this, key, entry);
}

std::size_t VolumeLocks::size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

}  // namespace ivd
