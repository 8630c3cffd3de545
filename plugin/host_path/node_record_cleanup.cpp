#include "host_path/node_record_cleanup.hpp"

#include "host_path/node_record.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <ctime>
#include <optional>

namespace ivd::host_path {

namespace {

constexpr std::time_t staged_quiet_s = 60;

void add_record_leftovers(const std::string &node_dir, bool scrub_chap, const std::vector<FoundRecord> &records,
                          std::vector<Leftover> &found) {
    for (const FoundRecord &f : records) {
        if (f.record && !scrub_chap) continue;  // by default a record keeps its password
        Leftover item;
        item.kind = "node_record_password";
        item.name = f.relative;
        item.detail["record"] = node_dir + "/" + f.relative;
        item.detail["iqn"] = f.iqn;
        if (!f.portal.host.empty()) item.detail["portal"] = f.portal.to_string();
        auto has = f.record ? record_has_password(*f.record) : Result<bool>(f.record.error());
        if (!has) {
            item.kind = "node_record";  // unsafe or unreadable: never read or written, only reported
            item.removable = false;
            item.reason = has.error().message;
            found.push_back(std::move(item));
            continue;
        }
        if (!*has) continue;
        item.reason = "scrub_chap_from_node_record is true but the record holds a CHAP password (a login was "
                      "interrupted before the password was removed again, or it predates the opt-in)";
        found.push_back(std::move(item));
    }
}

// The staging directory when it exists (nothing is created), else null.
Result<std::optional<PrivateDir>> staging_dir(const std::string &node_dir) {
    const std::string path = node_record_staging_dir(node_dir);
    struct stat st {};
    if (path.empty() || ::lstat(path.c_str(), &st) != 0) return std::optional<PrivateDir>();
    auto dir = PrivateDir::open(path, "iscsi_node_dir");
    if (!dir) return std::move(dir).error();
    return std::optional<PrivateDir>(std::move(*dir));
}

// Seconds since `name` was last written; nullopt when it is gone or not a regular file.
std::optional<std::time_t> quiet_for(const PrivateDir &dir, const std::string &name) {
    struct stat st {};
    if (::fstatat(dir.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return std::time(nullptr) - st.st_mtime;
}

}  // namespace

Result<std::vector<Leftover>> node_record_leftovers(const std::string &node_dir, bool scrub_chap) {
    std::vector<Leftover> found;
    auto records = list_node_records(node_dir);
    if (!records) return std::move(records).error().context("cleanup: scanning the node records");
    add_record_leftovers(node_dir, scrub_chap, *records, found);
    auto staging = staging_dir(node_dir);
    if (!staging) return std::move(staging).error().context("cleanup: scanning for staged node record rewrites");
    if (!*staging) return found;
    auto names = (*staging)->list_names_starting(staged_prefix);
    if (!names) return std::move(names).error().context("cleanup: scanning for staged node record rewrites");
    for (const std::string &name : *names) {
        const auto quiet = quiet_for(**staging, name);
        if (!quiet || *quiet < staged_quiet_s) continue;  // gone, or a rewrite in progress
        Leftover item;
        item.kind = "node_record_staging";
        item.name = name;
        item.detail["file"] = (*staging)->path() + "/" + name;
        item.reason = "a node record rewrite a crash left before renaming it into place (a copy of the record, "
                      "possibly with its CHAP password)";
        found.push_back(std::move(item));
    }
    return found;
}

Result<void> remove_staged_rewrite(const std::string &node_dir, const std::string &name) {
    if (!name.starts_with(staged_prefix)) {
        return make_error(Status::internal, "cleanup: not a staged node record rewrite: " + name);
    }
    auto staging = staging_dir(node_dir);
    if (!staging) return std::move(staging).error();
    if (!*staging) return {};
    const auto quiet = quiet_for(**staging, name);
    if (!quiet || *quiet < staged_quiet_s) return {};  // gone since the scan, or written again: in use
    return (*staging)->remove_file(name);
}

}  // namespace ivd::host_path
