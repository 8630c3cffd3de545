#include "libvirt/secret_store.hpp"

#include "libvirt/handles.hpp"
#include "xml/libvirt_xml.hpp"

#include <libvirt/virterror.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace ivd::libvirt {

namespace {

// Frees the array virConnectListAllSecrets hands out, including the secrets not yet taken.
struct SecretArray {
    virSecretPtr *items = nullptr;
    int count = 0;
    ~SecretArray() {
        for (int i = 0; i < count; ++i) {
            if (items[i] != nullptr) virSecretFree(items[i]);
        }
        free(items);  // NOLINT: allocated by libvirt with malloc
    }
};

bool last_error_is(int code) {
    const virErrorPtr e = virGetLastError();
    return e != nullptr && e->code == code;
}

Result<std::string> uuid_of(virSecretPtr secret) {
    std::array<char, VIR_UUID_STRING_BUFLEN> buf{};
    if (virSecretGetUUIDString(secret, buf.data()) != 0) return last_error("cannot read the secret's UUID");
    return std::string(buf.data());
}

// Looks the secret up; an absent secret is an empty handle, not an error.
Result<SecretHandle> lookup(virConnectPtr conn, const std::string &usage_name) {
    SecretHandle s(virSecretLookupByUsage(conn, VIR_SECRET_USAGE_TYPE_ISCSI, usage_name.c_str()));
    if (s) return s;
    if (last_error_is(VIR_ERR_NO_SECRET)) return SecretHandle{};
    return last_error(fmt::format("cannot look up iscsi secret {}", usage_name));
}

}  // namespace

Result<std::string> LibvirtSecretStore::put_iscsi_secret(const std::string &usage_name,
                                                         const std::string &description, const SecretString &value,
                                                         bool *created) {
    if (created != nullptr) *created = false;
    return connection_->call([&](virConnectPtr conn) -> Result<std::string> {
        auto found = lookup(conn, usage_name);
        if (!found) return std::move(found).error();
        SecretHandle secret = std::move(*found);
        bool fresh = false;
        if (!secret) {
            const std::string xml = ivd::xml::iscsi_secret_xml(usage_name, description, storage_);
            secret.reset(virSecretDefineXML(conn, xml.c_str(), 0));
            if (!secret) {
                Error e = last_error(fmt::format("cannot define iscsi secret {}", usage_name));
                // A concurrent caller may have defined the same usage in between: use theirs.
                auto again = lookup(conn, usage_name);
                if (!again || !*again) return e;
                secret = std::move(*again);
            } else {
                fresh = true;
            }
        }
        const std::string_view bytes = value.reveal();
        if (virSecretSetValue(secret.get(), reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size(),
                              0) != 0) {
            Error e = last_error(fmt::format("cannot set the value of iscsi secret {}", usage_name));
            // Leave nothing half-made behind; a kept secret stays as it was.
            if (fresh) virSecretUndefine(secret.get());
            return e;
        }
        if (created != nullptr) *created = fresh;
        return uuid_of(secret.get());
    });
}

Result<void> LibvirtSecretStore::remove_iscsi_secret(const std::string &usage_name) {
    return connection_->call([&](virConnectPtr conn) -> Result<void> {
        auto found = lookup(conn, usage_name);
        if (!found) return std::move(found).error();
        if (!*found) return {};
        if (virSecretUndefine(found->get()) != 0 && !last_error_is(VIR_ERR_NO_SECRET)) {
            return last_error(fmt::format("cannot undefine iscsi secret {}", usage_name));
        }
        return {};
    });
}

Result<std::optional<std::string>> LibvirtSecretStore::find_iscsi_secret(const std::string &usage_name) {
    return connection_->call([&](virConnectPtr conn) -> Result<std::optional<std::string>> {
        auto found = lookup(conn, usage_name);
        if (!found) return std::move(found).error();
        if (!*found) return std::optional<std::string>{};
        auto uuid = uuid_of(found->get());
        if (!uuid) return std::move(uuid).error();
        return std::optional<std::string>(std::move(uuid).value());
    });
}

Result<std::vector<std::string>> LibvirtSecretStore::list_iscsi_secret_usages(std::string_view prefix) {
    return connection_->call([&](virConnectPtr conn) -> Result<std::vector<std::string>> {
        SecretArray all;
        all.count = virConnectListAllSecrets(conn, &all.items, 0);
        if (all.count < 0) {
            all.count = 0;
            return last_error("cannot list libvirt secrets");
        }
        std::vector<std::string> usages;
        for (int i = 0; i < all.count; ++i) {
            if (virSecretGetUsageType(all.items[i]) != VIR_SECRET_USAGE_TYPE_ISCSI) continue;
            const char *id = virSecretGetUsageID(all.items[i]);
            if (id != nullptr && std::string_view(id).starts_with(prefix)) usages.emplace_back(id);
        }
        std::sort(usages.begin(), usages.end());
        return usages;
    });
}

Result<std::vector<SecretEntry>> LibvirtSecretStore::list_iscsi_secrets(std::string_view prefix) {
    return connection_->call([&](virConnectPtr conn) -> Result<std::vector<SecretEntry>> {
        SecretArray all;
        all.count = virConnectListAllSecrets(conn, &all.items, 0);
        if (all.count < 0) {
            all.count = 0;
            return last_error("cannot list libvirt secrets");
        }
        std::vector<SecretEntry> out;
        for (int i = 0; i < all.count; ++i) {
            if (virSecretGetUsageType(all.items[i]) != VIR_SECRET_USAGE_TYPE_ISCSI) continue;
            const char *id = virSecretGetUsageID(all.items[i]);
            if (id == nullptr || !std::string_view(id).starts_with(prefix)) continue;
            auto uuid = uuid_of(all.items[i]);
            if (!uuid) return std::move(uuid).error();
            out.push_back(SecretEntry{id, std::move(uuid).value()});
        }
        std::sort(out.begin(), out.end(), [](const SecretEntry &a, const SecretEntry &b) { return a.usage < b.usage; });
        return out;
    });
}

std::optional<Error> MemorySecretStore::take_failure() {
    std::optional<Error> f;
    f.swap(failure_);
    return f;
}

Result<std::string> MemorySecretStore::put_iscsi_secret(const std::string &usage_name,
                                                        const std::string &description, const SecretString &value,
                                                        bool *created) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (created != nullptr) *created = false;
    if (auto f = take_failure()) return std::move(*f);
    auto it = entries_.find(usage_name);
    if (created != nullptr) *created = it == entries_.end();
    if (it == entries_.end()) {
        const std::uint64_t n = next_id_++;
        Entry e{fmt::format("00000000-0000-4000-8000-{:012x}", n), description, value};
        it = entries_.emplace(usage_name, std::move(e)).first;
    } else {
        it->second.value = value;  // the old bytes are wiped by the assignment
    }
    return it->second.uuid;
}

Result<void> MemorySecretStore::remove_iscsi_secret(const std::string &usage_name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (auto f = take_failure()) return std::move(*f);
    entries_.erase(usage_name);
    return {};
}

Result<std::optional<std::string>> MemorySecretStore::find_iscsi_secret(const std::string &usage_name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (auto f = take_failure()) return std::move(*f);
    auto it = entries_.find(usage_name);
    if (it == entries_.end()) return std::optional<std::string>{};
    return std::optional<std::string>(it->second.uuid);
}

Result<std::vector<std::string>> MemorySecretStore::list_iscsi_secret_usages(std::string_view prefix) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (auto f = take_failure()) return std::move(*f);
    std::vector<std::string> usages;
    for (const auto &[usage, entry] : entries_) {
        if (std::string_view(usage).starts_with(prefix)) usages.push_back(usage);
    }
    return usages;
}

Result<std::vector<SecretEntry>> MemorySecretStore::list_iscsi_secrets(std::string_view prefix) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (auto f = take_failure()) return std::move(*f);
    std::vector<SecretEntry> out;
    for (const auto &[usage, entry] : entries_) {
        if (std::string_view(usage).starts_with(prefix)) out.push_back(SecretEntry{usage, entry.uuid});
    }
    return out;
}

std::optional<SecretString> MemorySecretStore::value_of(const std::string &usage_name) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(usage_name);
    if (it == entries_.end()) return std::nullopt;
    return it->second.value;
}

std::optional<std::string> MemorySecretStore::description_of(const std::string &usage_name) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(usage_name);
    if (it == entries_.end()) return std::nullopt;
    return it->second.description;
}

std::size_t MemorySecretStore::size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

void MemorySecretStore::fail_next_call(Error error) {
    const std::lock_guard<std::mutex> lock(mutex_);
    failure_ = std::move(error);
}

}  // namespace ivd::libvirt
