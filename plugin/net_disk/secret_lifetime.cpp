#include "net_disk/secret_lifetime.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ivd::net_disk {

namespace {

bool references(const libvirt::SecretReference &ref, const std::string &usage, const std::string &uuid) {
    return (!ref.usage.empty() && ref.usage == usage) || (!ref.uuid.empty() && !uuid.empty() && ref.uuid == uuid);
}

std::string describe(const libvirt::SecretReference &ref) {
    return fmt::format("domain {} ({} XML, disk {})", ref.domain, ref.view, ref.target_dev);
}

std::size_t recorded_users(const std::set<std::string> &ids) {
    return ids.size() - ids.count(std::string(unrecorded_users_id));
}

json::Value ids_json(const std::set<std::string> &ids) {
    json::Value out = json::Value::array(ids.size());
    for (const std::string &id : ids) out.append(id);
    return out;
}

}  // namespace

SecretLifetime::SecretLifetime(std::shared_ptr<libvirt::SecretStore> store, std::shared_ptr<AttachmentLedger> ledger,
                               DiskSecretLister list_references, Logger log)
    : store_(std::move(store)), ledger_(std::move(ledger)), list_references_(std::move(list_references)), log_(log) {}

Result<std::unique_ptr<LedgerLock>> SecretLifetime::lock(const std::string &usage) {
    auto held = ledger_->lock(usage);
    if (!held) return std::move(held).error().context(fmt::format("locking the attachment records of {}", usage));
    return held;
}

Result<std::string> SecretLifetime::other_users(const std::string &usage, const std::string &except) {
    auto ids = ledger_->attachments(usage);
    if (!ids) return std::move(ids).error().context("reading the attachment records");
    ids->erase(except);
    const bool unrecorded = ids->erase(std::string(unrecorded_users_id)) > 0;
    if (!ids->empty()) return fmt::format("{} other attachment(s) of the volume not disconnected yet", ids->size());
    // Records decide alone when every user of the secret has one: the domains are read only for a device_info
    // without an attachment id or a secret that was there before its records.
    const bool recorded = !except.empty() && except != unrecorded_users_id;
    if ((recorded && !unrecorded) || !list_references_) return std::string();
    auto uuid = store_->find_iscsi_secret(usage);
    if (!uuid) return std::move(uuid).error().context("looking the CHAP secret up in libvirt");
    if (!*uuid) return std::string();  // already gone
    auto refs = list_references_();
    if (!refs) return std::move(refs).error().context("checking whether a domain's disk still uses the CHAP secret");
    for (const libvirt::SecretReference &ref : *refs) {
        if (references(ref, usage, **uuid)) return "referenced by " + describe(ref);
    }
    return std::string();
}

Result<void> SecretLifetime::remove_secret(const std::string &usage) {
    if (auto r = store_->remove_iscsi_secret(usage); !r) {
        return std::move(r).error().context("removing the CHAP secret from libvirt");
    }
    // Nobody else holds it (other_users read the records under this lock): what is left in its record file is at
    // most the caller's own record and the unrecorded-users mark, so the file goes whole, unread.
    if (auto r = ledger_->clear(usage); !r) return std::move(r).error().context("removing the attachment records");
    return {};
}

Result<SecretLifetime::Hold> SecretLifetime::acquire(const std::string &usage, const std::string &description,
                                                     const SecretString &password) {
    auto id = new_attachment_id();
    if (!id) return std::move(id).error();
    auto held = lock(usage);
    if (!held) return std::move(held).error();
    bool created = false;
    auto uuid = store_->put_iscsi_secret(usage, description, password, &created);
    if (!uuid) return std::move(uuid).error().context("defining the CHAP secret in libvirt");
    Hold hold{usage, std::move(uuid).value(), std::move(id).value(), created};
    // A secret found defined with no record (a driver before attachment records defined it, or the records were
    // lost) has users nobody recorded: the ledger marks it with this record, so its disconnects read the domains
    // until one finds none.
    auto added = created ? ledger_->add(usage, hold.attachment_id)
                         : ledger_->add_to_found_secret(usage, hold.attachment_id);
    if (!added) {
        if (hold.created) {
            auto users = other_users(usage, hold.attachment_id);
            if (users && users->empty()) {
                if (auto r = remove_secret(usage); !r) {
                    log_.error("net_disk", "could not remove secret {} after a failed connect: {}", usage,
                               r.error().message);
                }
            }
        }
        return std::move(added).error().context("recording the attachment");
    }
    return hold;
}

Result<void> SecretLifetime::undo(const Hold &hold) {
    auto held = lock(hold.usage);
    if (!held) return std::move(held).error();
    if (auto r = ledger_->remove(hold.usage, hold.attachment_id); !r) return r;
    if (!hold.created) return {};  // it was there before this connect: somebody else's
    auto users = other_users(hold.usage, hold.attachment_id);
    if (!users) return std::move(users).error();
    if (!users->empty()) {
        log_.info("net_disk", "secret {} kept after a failed connect: {}", hold.usage, *users);
        return {};
    }
    return remove_secret(hold.usage);
}

Result<void> SecretLifetime::release(const std::string &usage, const std::string &given_id) {
    // The reserved id is nobody's attachment: a device_info carrying it is treated as one without an id.
    const std::string attachment_id = given_id == unrecorded_users_id ? std::string() : given_id;
    auto held = lock(usage);
    if (!held) return std::move(held).error();
    // Decide before changing anything: a failed check leaves the record, so the disconnect can be retried.
    auto users = other_users(usage, attachment_id);
    if (!users) return std::move(users).error();
    if (users->empty()) return remove_secret(usage);  // its own record goes with the secret's
    log_.info("net_disk", "secret {} kept: {}", usage, *users);
    if (attachment_id.empty()) return {};
    if (auto r = ledger_->remove(usage, attachment_id); !r) return std::move(r).error().context("removing the attachment record");
    return {};
}

Result<std::vector<Leftover>> SecretLifetime::find_leftovers(const std::string &prefix) {
    if (!list_references_) {
        return make_error(Status::not_implemented, "cleanup: this network path cannot list the domains' disks");
    }
    // Secrets and records first, references second: a secret defined in between is not in the list, so it
    // cannot be judged against an older view of the domains.
    auto secrets = store_->list_iscsi_secrets(prefix);
    if (!secrets) return std::move(secrets).error().context("cleanup: listing this driver's libvirt secrets");
    auto recorded = ledger_->usages();
    if (!recorded) return std::move(recorded).error().context("cleanup: listing the attachment records");
    auto refs = list_references_();
    if (!refs) return std::move(refs).error().context("cleanup: listing the secrets domains' disks reference");
    std::vector<Leftover> found;
    auto judge = [&](Leftover &item, const std::string &usage, const std::string &uuid) -> Result<void> {
        auto ids = ledger_->attachments(usage);
        if (!ids) return std::move(ids).error().context("cleanup: reading the attachment records of " + usage);
        item.detail["attachment_ids"] = ids_json(*ids);
        json::Value users = json::Value::array();
        for (const libvirt::SecretReference &ref : *refs) {
            if (!references(ref, usage, uuid)) continue;
            json::Value u = json::Value::object();
            u["domain"] = ref.domain;
            u["view"] = ref.view;
            u["dev"] = ref.target_dev;
            users.append(u);
            if (!item.in_use) item.reason = "referenced by " + describe(ref);
            item.in_use = true;
        }
        if (item.in_use) {
            if (users.size() > 1) item.reason += fmt::format(" and {} more", users.size() - 1);
            item.detail["referenced_by"] = users;
        } else {
            item.reason = fmt::format("no domain's disk references it (live or persistent XML){}: left "
                                      "by an interrupted connect or a host that never disconnected",
                                      recorded_users(*ids) == 0 ? "" : fmt::format("; {} attachment record(s) never "
                                                                      "disconnected", recorded_users(*ids)));
        }
        return {};
    };
    for (const libvirt::SecretEntry &secret : *secrets) {
        Leftover item;
        item.kind = "libvirt_secret";
        item.name = secret.usage;
        if (!secret.uuid.empty()) item.detail["uuid"] = secret.uuid;
        if (auto r = judge(item, secret.usage, secret.uuid); !r) return std::move(r).error();
        found.push_back(std::move(item));
    }
    for (const std::string &usage : *recorded) {
        if (!usage.starts_with(prefix)) continue;
        const bool has_secret = std::any_of(secrets->begin(), secrets->end(),
                                            [&](const libvirt::SecretEntry &s) { return s.usage == usage; });
        if (has_secret) continue;
        Leftover item;
        item.kind = "attachment_record";
        item.name = usage;
        if (auto r = judge(item, usage, ""); !r) return std::move(r).error();
        if (!item.in_use) item.reason = "attachment records of a secret that no longer exists";
        found.push_back(std::move(item));
    }
    return found;
}

Result<void> SecretLifetime::remove_leftover(const Leftover &leftover) {
    if ((leftover.kind != "libvirt_secret" && leftover.kind != "attachment_record") ||
        !std::string_view(leftover.name).starts_with("iscsi-volume-driver:")) {
        return make_error(Status::internal, "cleanup: not a secret of this driver: " + leftover.name);
    }
    auto held = lock(leftover.name);
    if (!held) return std::move(held).error();
    // A connect recorded since the scan is live: its disk is not in the scanned domain XML yet.
    auto ids = ledger_->attachments(leftover.name);
    if (!ids) return std::move(ids).error();
    std::set<std::string> seen;
    for (const json::Value &id : leftover.detail["attachment_ids"].items()) seen.insert(id.as_string());
    for (const std::string &id : *ids) {
        if (seen.count(id) == 0) {
            return make_error(Status::backend, fmt::format("cleanup: kept {}: attachment {} was recorded after the "
                                                           "scan (a connect in flight)", leftover.name, id));
        }
    }
    if (leftover.kind == "libvirt_secret") {
        if (auto r = store_->remove_iscsi_secret(leftover.name); !r) return r;
    }
    return ledger_->clear(leftover.name);
}

}  // namespace ivd::net_disk
