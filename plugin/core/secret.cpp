#include "core/secret.hpp"

#include <cstring>
#include <string.h>

namespace ivd {

void wipe_memory(void *data, std::size_t size) noexcept {
    if (data != nullptr && size != 0) explicit_bzero(data, size);
}

SecretString::SecretString(std::string_view bytes) : data_(new char[bytes.size() + 1]), size_(bytes.size()) {
    std::memcpy(data_.get(), bytes.data(), bytes.size());
    data_[size_] = '\0';
}

SecretString &SecretString::operator=(const SecretString &other) {
    if (this != &other) *this = SecretString(other);
    return *this;
}

SecretString::SecretString(SecretString &&other) noexcept : data_(std::move(other.data_)), size_(other.size_) {
    other.size_ = 0;
}

SecretString &SecretString::operator=(SecretString &&other) noexcept {
    if (this != &other) {
        clear();
        data_ = std::move(other.data_);
        size_ = other.size_;
        other.size_ = 0;
    }
    return *this;
}

SecretString::~SecretString() { clear(); }

void SecretString::clear() noexcept {
    if (data_) wipe_memory(data_.get(), size_ + 1);
    data_.reset();
    size_ = 0;
}

bool SecretString::equals(const SecretString &other) const noexcept {
    if (size_ != other.size_) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < size_; ++i) diff |= static_cast<unsigned char>(data_[i] ^ other.data_[i]);
    return diff == 0;
}

}  // namespace ivd
