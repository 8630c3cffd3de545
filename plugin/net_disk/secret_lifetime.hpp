// How long a volume's CHAP secret lives. The libvirt secret is per volume (its usage name), so several
// attachments share it: two domains (multiattach), a retried connect, a connect whose disk the host has not
// attached yet. Every connect records an attachment id in the AttachmentLedger; a secret goes when no other
// record remains. The domains' disks (live or persistent XML) are read as well only where records cannot tell:
// a device_info without an attachment id, or a secret found with no record (unrecorded_users_id), until such
// a read finds no disk using it. Every step for one volume runs under that volume's ledger lock, across
// processes.
#pragma once

#include "core/log.hpp"
#include "core/secret.hpp"
#include "driver/attach_path.hpp"
#include "libvirt/domain_disks.hpp"
#include "libvirt/secret_store.hpp"
#include "net_disk/attachment_ledger.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ivd::net_disk {

// Every secret reference in the disks of libvirt's domains.
using DiskSecretLister = std::function<Result<std::vector<libvirt::SecretReference>>()>;

class SecretLifetime {
public:
    // list_references unset: only the records decide, and cleanup is refused (it cannot prove a secret unused).
    SecretLifetime(std::shared_ptr<libvirt::SecretStore> store, std::shared_ptr<AttachmentLedger> ledger,
                   DiskSecretLister list_references, Logger log);

    struct Hold {
        std::string usage;
        std::string uuid;
        std::string attachment_id;
        bool created = false;  // this connect defined the secret
    };
    // Defines the secret when absent, (re)sets its value (a rotated password takes effect), records a new
    // attachment (with the unrecorded-users mark for a secret found without records) in one read and write.
    Result<Hold> acquire(const std::string &usage, const std::string &description, const SecretString &password);
    // For a connect that failed after acquire: drops its record, and the secret only when this connect created
    // it and nothing else uses it.
    Result<void> undo(const Hold &hold);
    // Disconnect: the secret goes when no other record remains (and, where records cannot tell, no domain disk
    // references it), and the volume's record file with it; otherwise only the record `attachment_id` goes ("" for
    // a device_info without one: the domains decide). The records are read once when the secret goes (its file
    // is then cleared unread), twice when it stays (the check, then the removal of that one record).
    Result<void> release(const std::string &usage, const std::string &attachment_id);

    // Secrets starting with `prefix` that no domain disk references (whatever their records say: cleanup runs
    // when no attach is in flight), and records whose secret is gone.
    Result<std::vector<Leftover>> find_leftovers(const std::string &prefix);
    Result<void> remove_leftover(const Leftover &leftover);

private:
    // Who else needs the secret (records other than `except`, domain disks): a reason, or "" when nobody.
    Result<std::string> other_users(const std::string &usage, const std::string &except);
    // The secret and its whole record file (call only when other_users found nobody).
    Result<void> remove_secret(const std::string &usage);
    Result<std::unique_ptr<LedgerLock>> lock(const std::string &usage);

    std::shared_ptr<libvirt::SecretStore> store_;
    std::shared_ptr<AttachmentLedger> ledger_;
    DiskSecretLister list_references_;
    Logger log_;
};

}  // namespace ivd::net_disk
