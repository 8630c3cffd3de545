#include "net_disk/attachment_ledger.hpp"

#include "core/hash.hpp"
#include "core/json.hpp"
#include "core/private_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string_view>
#include <thread>

namespace ivd::net_disk {

namespace {

constexpr std::string_view usage_prefix = "iscsi-volume-driver:";
constexpr unsigned lock_stripes = 64;  // a fixed set of lock files: the directory never grows with volumes
constexpr std::size_t max_record_bytes = 1 << 20;

class FlockLock final : public LedgerLock {
public:
    explicit FlockLock(UniqueFd fd) : fd_(std::move(fd)) {}
    ~FlockLock() override { ::flock(fd_.get(), LOCK_UN); }

private:
    UniqueFd fd_;
};

class MutexLock final : public LedgerLock {
public:
    explicit MutexLock(std::mutex &m) : lock_(m) {}

private:
    std::unique_lock<std::mutex> lock_;
};

Result<PrivateDir> records_dir(const std::string &state_dir) {
    auto dir = PrivateDir::open(state_dir, "state_dir");
    if (!dir) return std::move(dir).error();
    return dir->subdir("attachments");
}

struct Record {
    std::string usage;
    json::Value attachments = json::Value::array();  // [{"id", "created"}]
};

// The record of `usage`; an empty one when there is none. A file naming another usage (a hash collision of
// long names) is an error rather than a silent merge.
Result<Record> read_record(const PrivateDir &dir, const std::string &usage) {
    const std::string name = FileLedger::record_name(usage);
    auto text = dir.read_file(name);
    if (!text) {
        if (text.error().status == Status::not_found) return Record{usage};
        return std::move(text).error();
    }
    auto parsed = json::parse(*text, {.max_bytes = max_record_bytes});
    const json::Value &v = parsed.value;
    if (!parsed.ok || !v.is_object() || !v["usage"].is_string() || !v["attachments"].is_array()) {
        return make_error(Status::backend, fmt::format("{}/{}: not an attachment record", dir.path(), name));
    }
    if (v["usage"].as_string() != usage) {
        return make_error(Status::backend, fmt::format("{}/{}: holds the record of another secret ({})", dir.path(),
                                                       name, v["usage"].as_string()));
    }
    Record r{usage};
    for (const json::Value &a : v["attachments"].items()) {
        if (!a["id"].is_string() || !valid_attachment_id(a["id"].as_string())) {
            return make_error(Status::backend, fmt::format("{}/{}: an attachment without a valid id", dir.path(), name));
        }
        r.attachments.append(a);
    }
    return r;
}

Result<void> write_record(const PrivateDir &dir, const Record &r) {
    const std::string name = FileLedger::record_name(r.usage);
    if (r.attachments.empty()) return dir.remove_file(name);
    json::Value doc = json::Value::object();
    doc.add("usage", r.usage);
    doc.add("attachments", r.attachments);
    return dir.write_file(name, json::write(doc) + "\n");
}

void append_attachment(Record &r, std::string_view id) {
    json::Value a = json::Value::object();
    a.add("id", std::string(id));
    a.add("created", static_cast<std::int64_t>(std::time(nullptr)));
    r.attachments.append(std::move(a));
}

// One read and one write: `id`, and first the unrecorded-users mark when `mark_if_first` and there is no record.
Result<void> add_to_record(const std::string &state_dir, const std::string &usage, const std::string &id,
                           bool mark_if_first) {
    auto dir = records_dir(state_dir);
    if (!dir) return std::move(dir).error();
    auto r = read_record(*dir, usage);
    if (!r) return std::move(r).error();
    if (mark_if_first && r->attachments.empty()) append_attachment(*r, unrecorded_users_id);
    append_attachment(*r, id);
    return write_record(*dir, *r);
}

}  // namespace

bool valid_attachment_id(std::string_view id) {
    return id.size() == 32 &&
           std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string FileLedger::record_name(const std::string &usage) {
    std::string_view rest = usage;
    if (rest.starts_with(usage_prefix)) rest.remove_prefix(usage_prefix.size());
    std::string name = "v-";
    for (unsigned char c : rest) {
        if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
            name += static_cast<char>(c);
        } else {
            name += fmt::format("%{:02x}", c);
        }
    }
    // NAME_MAX is 255; long names become a hash (the file names its usage, so a collision is detected).
    if (name.size() > 200) name = fmt::format("h-{:016x}", fnv1a(usage));
    return name + ".json";
}

Result<std::unique_ptr<LedgerLock>> FileLedger::lock(const std::string &usage) {
    auto state = PrivateDir::open(state_dir_, "state_dir");
    if (!state) return std::move(state).error();
    auto locks = state->subdir("locks");
    if (!locks) return std::move(locks).error();
    const std::string name = fmt::format("lock-{:02}", fnv1a(usage) % lock_stripes);
    auto fd = locks->open_file(name, O_RDWR | O_CREAT);
    if (!fd) return std::move(fd).error();
    // Other connects and disconnects of this volume (any process) hold it for a few libvirt calls: wait, bounded.
    const auto deadline = std::chrono::steady_clock::now() + lock_timeout_;
    auto pause = std::chrono::milliseconds(1);
    while (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return make_error(Status::backend, fmt::format("flock {}/{}: {}", locks->path(), name, std::strerror(errno)));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return make_error(Status::timeout,
                              fmt::format("timed out after {} ms waiting for the lock {}/{} of secret {} (another "
                                          "connect or disconnect of the volume holds it)",
                                          lock_timeout_.count(), locks->path(), name, usage));
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
    return std::unique_ptr<LedgerLock>(std::make_unique<FlockLock>(std::move(*fd)));
}

Result<std::set<std::string>> FileLedger::attachments(const std::string &usage) {
    auto dir = records_dir(state_dir_);
    if (!dir) return std::move(dir).error();
    auto r = read_record(*dir, usage);
    if (!r) return std::move(r).error();
    std::set<std::string> ids;
    for (const json::Value &a : r->attachments.items()) ids.insert(a["id"].as_string());
    return ids;
}

Result<void> FileLedger::add(const std::string &usage, const std::string &id) {
    return add_to_record(state_dir_, usage, id, false);
}

Result<void> FileLedger::add_to_found_secret(const std::string &usage, const std::string &id) {
    return add_to_record(state_dir_, usage, id, true);
}

Result<void> FileLedger::remove(const std::string &usage, const std::string &id) {
    auto dir = records_dir(state_dir_);
    if (!dir) return std::move(dir).error();
    auto r = read_record(*dir, usage);
    if (!r) return std::move(r).error();
    json::Value kept = json::Value::array();
    for (const json::Value &a : r->attachments.items()) {
        if (a["id"].as_string() != id) kept.append(a);
    }
    if (kept.size() == r->attachments.size()) return {};
    r->attachments = std::move(kept);
    return write_record(*dir, *r);
}

Result<void> FileLedger::clear(const std::string &usage) {
    auto dir = records_dir(state_dir_);
    if (!dir) return std::move(dir).error();
    return dir->remove_file(record_name(usage));
}

Result<std::vector<std::string>> FileLedger::usages() {
    auto dir = records_dir(state_dir_);
    if (!dir) return std::move(dir).error();
    auto names = dir->list_names();
    if (!names) return std::move(names).error();
    std::erase_if(*names, [](std::string_view n) {
        return !((n.starts_with("v-") || n.starts_with("h-")) && n.ends_with(".json"));
    });
    std::vector<std::string> out;
    for (const std::string &name : *names) {
        auto text = dir->read_file(name);
        if (!text) {
            if (text.error().status == Status::not_found) continue;  // removed meanwhile
            return std::move(text).error();
        }
        auto parsed = json::parse(*text, {.max_bytes = max_record_bytes});
        if (!parsed.ok || !parsed.value["usage"].is_string()) {
            return make_error(Status::backend, fmt::format("{}/{}: not an attachment record", dir->path(), name));
        }
        out.push_back(parsed.value["usage"].as_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::unique_ptr<LedgerLock>> MemoryLedger::lock(const std::string &) {
    return std::unique_ptr<LedgerLock>(std::make_unique<MutexLock>(lock_));
}

Result<std::set<std::string>> MemoryLedger::attachments(const std::string &usage) {
    const std::lock_guard<std::mutex> g(mutex_);
    auto it = records_.find(usage);
    return it == records_.end() ? std::set<std::string>{} : it->second;
}

Result<void> MemoryLedger::add(const std::string &usage, const std::string &id) {
    const std::lock_guard<std::mutex> g(mutex_);
    records_[usage].insert(id);
    return {};
}

Result<void> MemoryLedger::add_to_found_secret(const std::string &usage, const std::string &id) {
    const std::lock_guard<std::mutex> g(mutex_);
    std::set<std::string> &ids = records_[usage];
    if (ids.empty()) ids.insert(std::string(unrecorded_users_id));
    ids.insert(id);
    return {};
}

Result<void> MemoryLedger::remove(const std::string &usage, const std::string &id) {
    const std::lock_guard<std::mutex> g(mutex_);
    auto it = records_.find(usage);
    if (it == records_.end()) return {};
    it->second.erase(id);
    if (it->second.empty()) records_.erase(it);
    return {};
}

Result<void> MemoryLedger::clear(const std::string &usage) {
    const std::lock_guard<std::mutex> g(mutex_);
    records_.erase(usage);
    return {};
}

Result<std::vector<std::string>> MemoryLedger::usages() {
    const std::lock_guard<std::mutex> g(mutex_);
    std::vector<std::string> out;
    for (const auto &[usage, ids] : records_) out.push_back(usage);
    return out;
}

}  // namespace ivd::net_disk
