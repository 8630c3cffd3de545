// RAII owners for libvirt object pointers; each deleter drops exactly the reference the handle holds.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>

namespace ivd::libvirt {

struct ConnectDeleter {
    void operator()(virConnectPtr conn) const noexcept {
        if (conn != nullptr) virConnectClose(conn);
    }
};
struct SecretDeleter {
    void operator()(virSecretPtr secret) const noexcept {
        if (secret != nullptr) virSecretFree(secret);
    }
};
struct DomainDeleter {
    void operator()(virDomainPtr domain) const noexcept {
        if (domain != nullptr) virDomainFree(domain);
    }
};

using ConnectHandle = std::unique_ptr<virConnect, ConnectDeleter>;
using SecretHandle = std::unique_ptr<virSecret, SecretDeleter>;
using DomainHandle = std::unique_ptr<virDomain, DomainDeleter>;

}  // namespace ivd::libvirt
