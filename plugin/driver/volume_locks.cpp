#include "driver/volume_locks.hpp"

namespace ivd {

VolumeLocks::Guard::Guard(VolumeLocks &owner, const std::string &key, Entry *entry)
    : owner_(owner), key_(key), entry_(entry) {
    entry_->mutex.lock();
}

VolumeLocks::Guard::~Guard() {
    entry_->mutex.unlock();
    const std::lock_guard<std::mutex> lock(owner_.mutex_);
    // Found first: erase(key_) would be handed a reference into the node it frees.
    if (--entry_->users == 0) owner_.entries_.erase(owner_.entries_.find(key_));  // as small as the work in flight
}

VolumeLocks::Guard VolumeLocks::lock(const std::string &key) {
    const std::string *stored = nullptr;
    Entry *entry = nullptr;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        auto &[name, slot] = *entries_.try_emplace(key).first;
        ++slot.users;
        stored = &name;
        entry = &slot;
    }
    return Guard(*this, *stored, entry);
}

std::size_t VolumeLocks::size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

}  // namespace ivd
