// A secret (CHAP password) that wipes its bytes when freed and cannot be formatted or logged by accident.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace ivd {

// Overwrites memory in a way the compiler may not elide.
void wipe_memory(void *data, std::size_t size) noexcept;

class SecretString {
public:
    SecretString() = default;
    explicit SecretString(std::string_view bytes);
    SecretString(const SecretString &other) : SecretString(other.reveal()) {}
    SecretString &operator=(const SecretString &other);
    SecretString(SecretString &&other) noexcept;
    SecretString &operator=(SecretString &&other) noexcept;
    ~SecretString();

    // The bytes, for the few places that must hand them on (libvirt secret value, iSCSI login).
    std::string_view reveal() const noexcept { return {data_.get(), size_}; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    // Constant-time comparison, so comparing secrets leaks no timing.
    bool equals(const SecretString &other) const noexcept;

private:
    void clear() noexcept;
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
};

}  // namespace ivd
