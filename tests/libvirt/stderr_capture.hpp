// Captures everything written to fd 2 (not just std::cerr) while alive: libvirt writes with fprintf/write.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace ivd::testing {

class StderrCapture {
public:
    StderrCapture() {
        std::fflush(stderr);
        file_ = std::tmpfile();
        saved_ = ::dup(2);
        if (file_ == nullptr || saved_ < 0 || ::dup2(::fileno(file_), 2) < 0) throw std::runtime_error("capture fd 2");
    }
    StderrCapture(const StderrCapture &) = delete;
    StderrCapture &operator=(const StderrCapture &) = delete;
    ~StderrCapture() { restore(); if (file_ != nullptr) std::fclose(file_); }

    // Stops capturing and returns what was written.
    std::string finish() {
        restore();
        std::string out;
        std::rewind(file_);
        char buf[4096];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
        return out;
    }

private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            ::dup2(saved_, 2);
            ::close(saved_);
            saved_ = -1;
        }
    }
    std::FILE *file_ = nullptr;
    int saved_ = -1;
};

}  // namespace ivd::testing
