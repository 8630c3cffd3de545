// Where the driver keeps CHAP passwords for QEMU: libvirt secrets of usage type iscsi, keyed by usage name.
#pragma once

#include "core/error.hpp"
#include "core/secret.hpp"
#include "libvirt/connection.hpp"
#include "xml/libvirt_xml.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::libvirt {

struct SecretEntry {
    std::string usage;
    std::string uuid;  // "" when the store cannot tell
};

class SecretStore {
public:
    virtual ~SecretStore() = default;
    // Defines the secret when absent (else keeps it), sets its value, returns its UUID; `*created` (when given)
    // says whether this call defined it. A secret defined by this call is undefined again when setting the value
    // fails.
    virtual Result<std::string> put_iscsi_secret(const std::string &usage_name, const std::string &description,
                                                 const SecretString &value, bool *created = nullptr) = 0;
    // Succeeds when the secret is already gone.
    virtual Result<void> remove_iscsi_secret(const std::string &usage_name) = 0;
    // The UUID of the secret with this usage, or nullopt when there is none.
    virtual Result<std::optional<std::string>> find_iscsi_secret(const std::string &usage_name) = 0;
    // Usage names of the iscsi secrets starting with prefix, sorted.
    virtual Result<std::vector<std::string>> list_iscsi_secret_usages(std::string_view prefix) = 0;
    // Usage names and UUIDs of the iscsi secrets starting with prefix, sorted by usage (for cleanup, which
    // must also recognise a disk that names the secret by UUID). Default: the usages without UUIDs.
    virtual Result<std::vector<SecretEntry>> list_iscsi_secrets(std::string_view prefix) {
        auto usages = list_iscsi_secret_usages(prefix);
        if (!usages) return std::move(usages).error();
        std::vector<SecretEntry> out;
        for (auto &u : *usages) out.push_back(SecretEntry{std::move(u), {}});
        return out;
    }
};

class LibvirtSecretStore final : public SecretStore {
public:
    // `storage` applies to the secrets this store defines; one found already defined is kept as it is.
    explicit LibvirtSecretStore(std::shared_ptr<Connection> connection,
                                xml::SecretStorage storage = xml::SecretStorage::persistent)
        : connection_(std::move(connection)), storage_(storage) {}
    Result<std::string> put_iscsi_secret(const std::string &usage_name, const std::string &description,
                                         const SecretString &value, bool *created = nullptr) override;
    Result<void> remove_iscsi_secret(const std::string &usage_name) override;
    Result<std::optional<std::string>> find_iscsi_secret(const std::string &usage_name) override;
    Result<std::vector<std::string>> list_iscsi_secret_usages(std::string_view prefix) override;
    Result<std::vector<SecretEntry>> list_iscsi_secrets(std::string_view prefix) override;

    const std::shared_ptr<Connection> &connection() const { return connection_; }

private:
    std::shared_ptr<Connection> connection_;
    xml::SecretStorage storage_;
};

// In-memory fake for unit tests and benchmarks; values are SecretStrings, so they are wiped when replaced.
class MemorySecretStore final : public SecretStore {
public:
    Result<std::string> put_iscsi_secret(const std::string &usage_name, const std::string &description,
                                         const SecretString &value, bool *created = nullptr) override;
    Result<void> remove_iscsi_secret(const std::string &usage_name) override;
    Result<std::optional<std::string>> find_iscsi_secret(const std::string &usage_name) override;
    Result<std::vector<std::string>> list_iscsi_secret_usages(std::string_view prefix) override;
    Result<std::vector<SecretEntry>> list_iscsi_secrets(std::string_view prefix) override;

    // Test helpers.
    std::optional<SecretString> value_of(const std::string &usage_name) const;
    std::optional<std::string> description_of(const std::string &usage_name) const;
    std::size_t size() const;
    // The next put/remove/list fails with this error (once).
    void fail_next_call(Error error);

private:
    struct Entry {
        std::string uuid;
        std::string description;
        SecretString value;
    };
    std::optional<Error> take_failure();

    mutable std::mutex mutex_;
    std::map<std::string, Entry, std::less<>> entries_;
    std::optional<Error> failure_;
    std::uint64_t next_id_ = 1;
};

}  // namespace ivd::libvirt
