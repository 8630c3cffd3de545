#include "host_path/attachment_journal.hpp"

#include "core/hash.hpp"
#include "core/private_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

namespace ivd::host_path {

namespace {

constexpr std::size_t max_record_bytes = 1 << 20;
constexpr std::string_view journal_subdir = "host-attachments";

// "volume:abc" -> "a-volume%3aabc"; long keys become a hash (the record names its volume, so a collision shows).
std::string base_name(const std::string &volume) {
    std::string name = "a-";
    for (unsigned char c : volume) {
        if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
            name += static_cast<char>(c);
        } else {
            name += fmt::format("%{:02x}", c);
        }
    }
    if (name.size() > 200) name = fmt::format("h-{:016x}", fnv1a(volume));
    return name;
}

json::Value path_to_json(const JournalPath &p) {
    json::Value v = request::target_to_json(p.target, 6);
    if (p.target.addressing != request::LunAddressing::sam) {
        v.add("addressing_mode", request::addressing_mode_name(p.target.addressing));
    }
    // Only a non-default iface is written: a record without one (older drivers) means "default".
    if (p.iface != request::default_iface) v.add("iface", p.iface);
    v.add("step", p.step);
    v.add("owned", p.owned);
    v.add("device_existed", p.device_existed);
    if (!p.device.empty()) v.add("device", p.device);
    return v;
}

Result<JournalPath> path_from_json(const json::Value &v, const std::string &where) {
    auto bad = [&](const char *what) {
        return make_error(Status::backend, fmt::format("{}: a path without a valid {}", where, what));
    };
    if (!v["portal"].is_string() || !v["iqn"].is_string() || !v["lun"].is_integer()) return bad("portal, iqn or lun");
    JournalPath p;
    auto portal = request::parse_portal(v["portal"].as_string());
    if (!portal) return bad("portal");
    p.target.portal = *portal;
    p.target.iqn = v["iqn"].as_string();
    p.target.lun = v["lun"].as_int64();
    if (v["addressing_mode"].is_string()) {
        auto mode = request::addressing_mode_from_name(v["addressing_mode"].as_string());
        if (!mode) return bad("addressing_mode");
        p.target.addressing = *mode;
    }
    if (v.find("iface") != nullptr) {
        // The name goes into iscsiadm's argv and node record paths: only one iscsi_ifaces would accept.
        if (!v["iface"].is_string() || !request::valid_iscsi_iface_name(v["iface"].as_string())) return bad("iface");
        p.iface = v["iface"].as_string();
    }
    p.step = v["step"].as_string();
    p.owned = v["owned"].as_bool();
    p.device_existed = v["device_existed"].as_bool();
    p.device = v["device"].as_string();
    // A device name goes into sysfs paths: one plain component only.
    if (p.device.find('/') != std::string::npos || p.device == "." || p.device == "..") return bad("device");
    return p;
}

class FlockLock final : public JournalLock {
public:
    explicit FlockLock(UniqueFd fd) : fd_(std::move(fd)) {}
    ~FlockLock() override { ::flock(fd_.get(), LOCK_UN); }

private:
    UniqueFd fd_;
};

class FileJournal final : public AttachmentJournal {
public:
    FileJournal(std::string state_dir, std::chrono::milliseconds timeout, JournalObserver observer)
        : state_dir_(std::move(state_dir)), timeout_(timeout), observer_(std::move(observer)) {}

    Result<std::unique_ptr<JournalLock>> lock(const std::string &volume) override { return take(volume, true); }
    Result<std::unique_ptr<JournalLock>> try_lock(const std::string &volume) override { return take(volume, false); }

    Result<std::optional<JournalRecord>> read(const std::string &volume) override {
        auto d = dir();
        if (!d) return std::move(d).error();
        auto r = read_name(*d, base_name(volume) + ".json");
        if (!r || !*r || (*r)->volume == volume) return r;
        return make_error(Status::backend, fmt::format("{}/{}.json holds the record of another volume ({})", d->path(),
                                                       base_name(volume), (*r)->volume));
    }

    Result<void> write(JournalRecord record) override {
        auto d = dir();
        if (!d) return std::move(d).error();
        record.updated = static_cast<std::int64_t>(std::time(nullptr));
        record.pid = static_cast<int>(::getpid());
        if (auto w = d->write_file(base_name(record.volume) + ".json", json::write(record_to_json(record)) + "\n"); !w) {
            return w;
        }
        if (observer_) observer_(record);
        return {};
    }

    Result<void> remove(const std::string &volume) override {
        auto d = dir();
        if (!d) return std::move(d).error();
        return d->remove_file(base_name(volume) + ".json");
    }

    Result<std::vector<JournalRecord>> list() override;

private:
    Result<PrivateDir> dir() const {
        auto state = PrivateDir::open(state_dir_, "state_dir");
        if (!state) return std::move(state).error();
        return state->subdir(journal_subdir);
    }
    Result<std::optional<JournalRecord>> read_name(const PrivateDir &d, const std::string &name) const;
    Result<std::unique_ptr<JournalLock>> take(const std::string &volume, bool wait);

    std::string state_dir_;
    std::chrono::milliseconds timeout_;
    JournalObserver observer_;
};

Result<std::optional<JournalRecord>> FileJournal::read_name(const PrivateDir &d, const std::string &name) const {
    auto text = d.read_file(name);
    if (!text) {
        if (text.error().status == Status::not_found) return std::optional<JournalRecord>();
        return std::move(text).error();
    }
    const std::string where = d.path() + "/" + name;
    auto parsed = json::parse(*text, {.max_bytes = max_record_bytes});
    if (!parsed.ok) return make_error(Status::backend, fmt::format("{}: not JSON: {}", where, parsed.error.reason));
    auto record = record_from_json(parsed.value, where);
    if (!record) return std::move(record).error();
    return std::optional<JournalRecord>(std::move(record).value());
}

Result<std::unique_ptr<JournalLock>> FileJournal::take(const std::string &volume, bool wait) {
    auto d = dir();
    if (!d) return std::move(d).error();
    const std::string name = base_name(volume) + ".lock";
    auto fd = d->open_file(name, O_RDWR | O_CREAT);
    if (!fd) return std::move(fd).error();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    auto pause = std::chrono::milliseconds(1);
    while (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return make_error(Status::backend, fmt::format("flock {}/{}: {}", d->path(), name, std::strerror(errno)));
        }
        if (!wait) return std::unique_ptr<JournalLock>();
        if (std::chrono::steady_clock::now() >= deadline) {
            return make_error(Status::timeout,
                              fmt::format("state_lock_timeout_ms: timed out after {} ms waiting for the lock {}/{} "
                                          "(another connect, disconnect or cleanup of {} holds it)",
                                          timeout_.count(), d->path(), name, volume));
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
    return std::unique_ptr<JournalLock>(std::make_unique<FlockLock>(std::move(*fd)));
}

Result<std::vector<JournalRecord>> FileJournal::list() {
    auto d = dir();
    if (!d) return std::move(d).error();
    auto names = d->list_names();
    if (!names) return std::move(names).error();
    std::erase_if(*names, [](std::string_view n) {
        return !((n.starts_with("a-") || n.starts_with("h-")) && n.ends_with(".json"));
    });
    std::vector<JournalRecord> out;
    for (const std::string &name : *names) {
        auto r = read_name(*d, name);
        if (!r) return std::move(r).error();
        if (*r) out.push_back(std::move(**r));  // else removed meanwhile
    }
    return out;
}

class MutexLock final : public JournalLock {
public:
    explicit MutexLock(std::unique_lock<std::mutex> lock) : lock_(std::move(lock)) {}

private:
    std::unique_lock<std::mutex> lock_;
};

class MemoryJournal final : public AttachmentJournal {
public:
    Result<std::unique_ptr<JournalLock>> lock(const std::string &) override {
        return std::unique_ptr<JournalLock>(std::make_unique<MutexLock>(std::unique_lock(lock_)));
    }
    Result<std::unique_ptr<JournalLock>> try_lock(const std::string &) override {
        std::unique_lock l(lock_, std::try_to_lock);
        if (!l.owns_lock()) return std::unique_ptr<JournalLock>();
        return std::unique_ptr<JournalLock>(std::make_unique<MutexLock>(std::move(l)));
    }
    Result<std::optional<JournalRecord>> read(const std::string &volume) override {
        std::lock_guard g(mutex_);
        auto it = records_.find(volume);
        if (it == records_.end()) return std::optional<JournalRecord>();
        return std::optional<JournalRecord>(it->second);
    }
    Result<void> write(JournalRecord record) override {
        std::lock_guard g(mutex_);
        records_[record.volume] = std::move(record);
        return {};
    }
    Result<void> remove(const std::string &volume) override {
        std::lock_guard g(mutex_);
        records_.erase(volume);
        return {};
    }
    Result<std::vector<JournalRecord>> list() override {
        std::lock_guard g(mutex_);
        std::vector<JournalRecord> out;
        for (const auto &[k, r] : records_) out.push_back(r);
        return out;
    }

private:
    std::mutex lock_;  // one "volume lock" for all volumes is enough here
    std::mutex mutex_;
    std::map<std::string, JournalRecord> records_;
};

}  // namespace

JournalPath *JournalRecord::path(const request::Target &target, const std::string &iface) {
    auto it = std::find_if(paths.begin(), paths.end(),
                           [&](const JournalPath &p) { return p.target == target && p.iface == iface; });
    return it == paths.end() ? nullptr : &*it;
}

bool JournalRecord::has_path(const request::Target &target, const std::string &iface) const {
    return std::any_of(paths.begin(), paths.end(),
                       [&](const JournalPath &p) { return p.target == target && p.iface == iface; });
}

json::Value record_to_json(const JournalRecord &r) {
    json::Value v = json::Value::object(12);
    v.add("version", JournalRecord::format_version);
    v.add("volume", r.volume);
    v.add("state", r.state);
    v.add("step", r.step);
    v.add("was_connected", r.was_connected);
    json::Value &paths = v.add("paths", json::Value::array(r.paths.size()));
    for (const JournalPath &p : r.paths) paths.append(path_to_json(p));
    v.add("wwid", r.wwid);
    v.add("wwid_added", r.wwid_added);
    v.add("map_name", r.map_name);
    v.add("updated", r.updated);
    v.add("pid", r.pid);
    return v;
}

Result<JournalRecord> record_from_json(const json::Value &v, const std::string &where) {
    if (!v.is_object() || !v["version"].is_integer()) {
        return make_error(Status::backend, fmt::format("{}: not a host attachment record", where));
    }
    if (v["version"].as_int64() != JournalRecord::format_version) {
        return make_error(Status::backend, fmt::format("{}: record version {} is not one this driver reads ({})", where,
                                                       v["version"].as_int64(), JournalRecord::format_version));
    }
    if (!v["volume"].is_string() || v["volume"].as_string().empty() || !v["paths"].is_array()) {
        return make_error(Status::backend, fmt::format("{}: a record without volume or paths", where));
    }
    JournalRecord r;
    r.volume = v["volume"].as_string();
    r.state = v["state"].as_string();
    r.step = v["step"].as_string();
    r.was_connected = v["was_connected"].as_bool();
    for (const json::Value &p : v["paths"].items()) {
        auto path = path_from_json(p, where);
        if (!path) return std::move(path).error();
        r.paths.push_back(std::move(path).value());
    }
    r.wwid = v["wwid"].as_string();
    r.wwid_added = v["wwid_added"].as_bool();
    r.map_name = v["map_name"].as_string();
    r.updated = v["updated"].as_int64();
    r.pid = static_cast<int>(v["pid"].as_int64());
    return r;
}

std::shared_ptr<AttachmentJournal> make_file_journal(std::string state_dir, std::chrono::milliseconds lock_timeout,
                                                     JournalObserver observer) {
    return std::make_shared<FileJournal>(std::move(state_dir), lock_timeout, std::move(observer));
}

std::shared_ptr<AttachmentJournal> make_memory_journal() { return std::make_shared<MemoryJournal>(); }

Result<void> JournalEntry::update(const std::function<void(JournalRecord &)> &change) {
    std::lock_guard g(mutex_);
    change(record_);
    return journal_.write(record_);
}

void JournalEntry::path_step(const request::Target &target, const std::string &iface, const char *step,
                             const std::string &device) {
    auto r = update([&](JournalRecord &rec) {
        rec.step = step;
        if (JournalPath *p = rec.path(target, iface)) {
            p->step = step;
            if (!device.empty()) p->device = device;
        }
    });
    if (!r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

void JournalEntry::path_login(const request::Target &target, const std::string &iface, bool owned,
                              bool device_existed) {
    auto r = update([&](JournalRecord &rec) {
        rec.step = "login";
        JournalPath *p = rec.path(target, iface);
        if (p == nullptr) return;
        if (p->step == "planned") {
            p->owned = owned;
            p->device_existed = device_existed;
        }
        p->step = "login";
    });
    if (!r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

void JournalEntry::path_found_there(const request::Target &target, const std::string &iface, bool device_existed) {
    auto r = update([&](JournalRecord &rec) {
        JournalPath *p = rec.path(target, iface);
        if (p == nullptr || p->step != "login") return;
        p->owned = false;
        p->device_existed = device_existed;
    });
    if (!r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

void JournalEntry::update_step(const char *step, const std::string &map_name) {
    auto r = update([&](JournalRecord &rec) {
        rec.step = step;
        if (!map_name.empty()) rec.map_name = map_name;
    });
    if (!r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

JournalRecord JournalEntry::current() const {
    std::lock_guard g(mutex_);
    return record_;
}

void JournalEntry::remove() {
    std::lock_guard g(mutex_);
    if (auto r = journal_.remove(record_.volume); !r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

void JournalEntry::restore() {
    std::lock_guard g(mutex_);
    auto r = before_ ? journal_.write(*before_) : journal_.remove(record_.volume);
    if (!r) log_.warning("host_path", "journal {}: {}", record_.volume, r.error().message);
}

}  // namespace ivd::host_path
