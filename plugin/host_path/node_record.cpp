#include "host_path/node_record.hpp"

#include "core/hash.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ivd::host_path {

namespace {

constexpr std::string_view field = "iscsi_node_dir";
constexpr std::string_view password_key = "node.session.auth.password";

// A buffer that may hold a password: wiped (its whole capacity) when it goes.
struct WipedText {
    std::string text;
    WipedText() = default;
    WipedText(const WipedText &) = delete;
    WipedText &operator=(const WipedText &) = delete;
    ~WipedText() {
        text.resize(text.capacity());
        wipe_memory(text.data(), text.size());
    }
    // Room for `n` more bytes; a reallocation wipes the old buffer instead of leaving it in freed memory.
    void reserve_more(std::size_t n) {
        if (text.capacity() - text.size() >= n) return;
        std::string bigger;
        bigger.reserve(std::max(text.capacity() * 2, text.size() + n));
        bigger.append(text);
        text.resize(text.capacity());
        wipe_memory(text.data(), text.size());
        text = std::move(bigger);
    }
};

Error unsafe(const std::string &path, std::string_view why) {
    return make_error(Status::backend, fmt::format("{}: {} {}; refusing to use it as root", field, path, why));
}

// Names in a directory (dot entries skipped: temporary files, ours and iscsiadm's), sorted; none when unreadable.
std::vector<std::string> names_in(const PrivateDir &dir) {
    auto names = dir.list_names();
    return names ? std::move(names).value() : std::vector<std::string>{};
}

// lstat of `name` in `dir`: the file type, 0 when it does not exist.
Result<mode_t> type_of(const PrivateDir &dir, const std::string &name) {
    struct stat st {};
    if (::fstatat(dir.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return mode_t{0};
        return make_error(Status::backend, fmt::format("{}: {}/{}: {}", field, dir.path(), name, std::strerror(errno)));
    }
    return st.st_mode & S_IFMT;
}

using DirPtr = std::shared_ptr<const PrivateDir>;

// iscsi_node_dir itself; null when it does not exist (a host without open-iscsi: nothing is created).
Result<DirPtr> open_root(const std::string &node_dir) {
    struct stat st {};
    if (::lstat(node_dir.c_str(), &st) != 0 && errno == ENOENT) return DirPtr{};
    auto dir = PrivateDir::open(node_dir, field);
    if (!dir) return std::move(dir).error();
    return DirPtr(std::make_shared<PrivateDir>(std::move(*dir)));
}

// An existing subdirectory, checked; null when missing (subdir() alone would create it).
Result<DirPtr> existing_subdir(const PrivateDir &parent, const std::string &name) {
    auto type = type_of(parent, name);
    if (!type) return std::move(type).error();
    if (*type == 0) return DirPtr{};
    if (*type != S_IFDIR) return unsafe(parent.path() + "/" + name, "is a symlink or not a directory");
    auto dir = parent.subdir(name);
    if (!dir) {
        Error e = std::move(dir).error();
        e.field = std::string(field);
        e.argument = "config";
        return std::move(e).context(std::string(field));
    }
    return DirPtr(std::make_shared<PrivateDir>(std::move(*dir)));
}

// A record file in `dir`: a regular file with one link, owned by root, not group/other-writable.
Result<NodeRecord> checked_record(const DirPtr &dir, const std::string &name) {
    auto type = type_of(*dir, name);
    if (!type) return std::move(type).error();
    if (*type != S_IFREG) return unsafe(dir->path() + "/" + name, "is a symlink or not a regular file");
    auto fd = dir->open_file(name, O_RDONLY);
    if (!fd) return std::move(fd).error().context(std::string(field));
    return NodeRecord{dir, name, {}};
}

// "HOST,PORT" or "HOST,PORT,TPGT" (HOST may be a bracketed IPv6 address).
std::optional<request::Portal> portal_of(const std::string &name) {
    const auto first = name.find(',');
    if (first == std::string::npos || first == 0) return std::nullopt;
    const auto second = name.find(',', first + 1);
    const std::string port = name.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    const unsigned long number = std::stoul(port);
    if (number == 0 || number > 65535) return std::nullopt;
    request::Portal p;
    p.host = name.substr(0, first);
    if (p.host.size() > 2 && p.host.front() == '[' && p.host.back() == ']') p.host = p.host.substr(1, p.host.size() - 2);
    p.port = static_cast<std::uint16_t>(number);
    p.ipv6 = p.host.find(':') != std::string::npos;
    return p;
}

// The records of one IQN directory, for the scan.
void records_of_iqn(const DirPtr &iqn_dir, const std::string &iqn, std::vector<FoundRecord> &out) {
    for (const std::string &name : names_in(*iqn_dir)) {
        const auto portal = portal_of(name);
        if (!portal) continue;
        const std::string relative = iqn + "/" + name;
        auto type = type_of(*iqn_dir, name);
        if (!type || *type != S_IFDIR) {  // static record HOST,PORT (or something unsafe: reported)
            out.push_back(FoundRecord{relative, iqn, *portal, checked_record(iqn_dir, name)});
            continue;
        }
        auto sub = existing_subdir(*iqn_dir, name);  // discovered: HOST,PORT,TPGT/IFACE
        if (!sub) {
            out.push_back(FoundRecord{relative, iqn, *portal, std::move(sub).error()});
            continue;
        }
        if (!*sub) continue;
        for (const std::string &iface : names_in(**sub)) {
            out.push_back(FoundRecord{relative + "/" + iface, iqn, *portal, checked_record(*sub, iface)});
        }
    }
}

// The whole record into `into` (wiped by its owner).
Result<void> read_record(const NodeRecord &record, WipedText &into) {
    auto fd = record.dir->open_file(record.name, O_RDONLY);
    if (!fd) return std::move(fd).error().context(std::string(field));
    for (;;) {
        into.reserve_more(4096);
        const std::size_t used = into.text.size();
        into.text.resize(into.text.capacity());  // within capacity: no reallocation
        const ssize_t n = ::read(fd->get(), into.text.data() + used, into.text.size() - used);
        into.text.resize(used + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(Status::backend, fmt::format("{}: cannot read node record {}: {}", field, record.path(), std::strerror(errno)));
        if (n == 0) return {};
    }
}

constexpr std::string_view record_space = " \t\n\v\f\r";  // isspace() in the C locale, as open-iscsi strips
constexpr std::string_view name_end = " \t\n\v\f\r=";

// The name a record line sets, as open-iscsi reads it ("" for a comment or a blank line).
std::string_view line_name(std::string_view line) {
    const std::size_t start = line.find_first_not_of(record_space);
    if (start == std::string_view::npos || line[start] == '#') return {};
    line = line.substr(start);
    return line.substr(0, line.find_first_of(name_end));
}

bool is_password_line(std::string_view line) { return line_name(line) == password_key; }

// The next line of `rest` (without its newline), which moves past it. Views only: no copy of a password.
std::string_view next_line(std::string_view &rest) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    return line;
}

// The value of `key` in a record ("" when the record has no such line).
Result<std::string> record_value(const NodeRecord &record, std::string_view key) {
    WipedText text;
    if (auto r = read_record(record, text); !r) return std::move(r).error();
    for (std::string_view rest(text.text); !rest.empty();) {
        const std::string_view line = next_line(rest);
        if (line.rfind(key, 0) != 0 || line.substr(key.size()).rfind(" = ", 0) != 0) continue;
        return std::string(line.substr(key.size() + 3));
    }
    return std::string();
}

// An old-style record (a file HOST,PORT: what `iscsiadm -o new` writes while the TPGT is unknown) is the record
// of the iface it names; one without iface.iscsi_ifacename is the default iface's.
Result<bool> static_record_of(const NodeRecord &record, const std::string &iface) {
    if (iface == "default") return true;  // as before ifaces: any static record of the portal
    auto named = record_value(record, "iface.iscsi_ifacename");
    if (!named) return std::move(named).error();
    return *named == iface;
}

}  // namespace

Result<std::optional<NodeRecord>> find_node_record(const std::string &node_dir, const request::Portal &portal,
                                                   const std::string &iqn, const std::string &iface) {
    using Found = std::optional<NodeRecord>;
    auto root = open_root(node_dir);
    if (!root) return std::move(root).error();
    if (!*root) return Found{};
    auto iqn_dir = existing_subdir(**root, iqn);
    if (!iqn_dir) return std::move(iqn_dir).error();
    if (!*iqn_dir) return Found{};
    const std::string plain = fmt::format("{},{}", portal.host, portal.port);
    const std::string bracketed = fmt::format("[{}],{}", portal.host, portal.port);
    for (const std::string &name : names_in(**iqn_dir)) {
        const bool exact = name == plain || name == bracketed;
        const bool with_tpgt = name.rfind(plain + ",", 0) == 0 || name.rfind(bracketed + ",", 0) == 0;
        if (!exact && !with_tpgt) continue;
        auto type = type_of(**iqn_dir, name);
        if (!type) return std::move(type).error();
        if (*type != S_IFDIR) {  // static record HOST,PORT; anything but a regular file is refused
            auto record = checked_record(*iqn_dir, name);
            if (!record) return std::move(record).error();
            auto ours = static_record_of(*record, iface);
            if (!ours) return std::move(ours).error();
            if (!*ours) continue;
            record->staging = node_record_staging_dir(node_dir);
            return Found(std::move(*record));
        }
        auto sub = existing_subdir(**iqn_dir, name);  // discovered: HOST,PORT,TPGT/IFACE
        if (!sub) return std::move(sub).error();
        if (!*sub) continue;
        auto iface_type = type_of(**sub, iface);
        if (!iface_type) return std::move(iface_type).error();
        if (*iface_type == 0) continue;
        auto record = checked_record(*sub, iface);
        if (!record) return std::move(record).error();
        record->staging = node_record_staging_dir(node_dir);
        return Found(std::move(*record));
    }
    return Found{};
}

std::string node_record_staging_dir(const std::string &node_dir) {
    std::string_view dir = node_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
    const std::size_t slash = dir.rfind('/');
    return slash == std::string_view::npos || slash == 0 ? std::string() : std::string(dir.substr(0, slash));
}

Result<std::vector<FoundRecord>> list_node_records(const std::string &node_dir) {
    std::vector<FoundRecord> out;
    auto root = open_root(node_dir);
    if (!root) return std::move(root).error();
    if (!*root) return out;
    for (const std::string &iqn : names_in(**root)) {
        auto dir = existing_subdir(**root, iqn);
        if (!dir) {
            out.push_back(FoundRecord{iqn, iqn, request::Portal{}, std::move(dir).error()});
        } else if (*dir) {
            records_of_iqn(*dir, iqn, out);
        }
    }
    return out;
}

Result<std::optional<NodeRecord>> open_node_record(const std::string &node_dir, const std::string &relative) {
    using Found = std::optional<NodeRecord>;
    std::vector<std::string> parts;
    for (std::size_t start = 0; start <= relative.size();) {
        const std::size_t end = std::min(relative.find('/', start), relative.size());
        parts.push_back(relative.substr(start, end - start));
        start = end + 1;
    }
    const bool bad = parts.size() < 2 || parts.size() > 3 ||
                     std::any_of(parts.begin(), parts.end(), [](const std::string &p) { return p.empty() || p[0] == '.'; });
    if (bad) return make_error(Status::internal, fmt::format("not a node record name: '{}'", relative));
    auto dir = open_root(node_dir);
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (!dir) return std::move(dir).error();
        if (!*dir) return Found{};
        dir = existing_subdir(**dir, parts[i]);
    }
    if (!dir) return std::move(dir).error();
    if (!*dir) return Found{};
    auto type = type_of(**dir, parts.back());
    if (!type) return std::move(type).error();
    if (*type == 0) return Found{};
    auto record = checked_record(*dir, parts.back());
    if (!record) return std::move(record).error();
    record->staging = node_record_staging_dir(node_dir);
    return Found(std::move(*record));
}

namespace {

// The record rewritten atomically; the temporary file outside the tree when its staging directory opens. Its
// name is the record's (a crash's leftover is taken over by the next write; the target lock keeps one writer).
Result<void> replace_record(const NodeRecord &record, std::string_view text) {
    if (!record.staging.empty()) {
        if (auto staging = PrivateDir::open(record.staging, field)) {
            auto written = record.dir->write_file_staged(*staging,
                                                         fmt::format("{}{:016x}.tmp", staged_prefix, fnv1a(record.path())),
                                                         record.name, text);
            if (!written) return written;
            // What an earlier version's crash left beside the record would be read by iscsiadm as a record.
            return record.dir->remove_file(fmt::format(".{}.tmp", record.name));
        }
    }
    return record.dir->write_file(record.name, text);
}

}  // namespace

bool fits_node_record(std::string_view value) noexcept {
    return !value.empty() && value.find_first_of(std::string_view("\n\r\0", 3)) == std::string_view::npos &&
           record_space.find(value.front()) == std::string_view::npos &&
           record_space.find(value.back()) == std::string_view::npos;
}

namespace {

// What would not come back the same from the record, refused before anything is read or written.
Result<void> refuse_unfit(const NodeRecord &record, std::span<const RecordSetting> settings, const SecretString *password) {
    for (const RecordSetting &s : settings) {
        if (!fits_node_record(s.value)) {
            return make_error(Status::invalid_argument, fmt::format("{}: the value of {} cannot be kept in node record {}",
                                                                    field, s.name, record.path()));
        }
    }
    if (password != nullptr && !fits_node_record(password->reveal())) {
        return make_error(Status::invalid_argument, fmt::format("{}: the CHAP password cannot be kept in node record {}",
                                                                field, record.path()));
    }
    return {};
}

}  // namespace

Result<void> write_record_settings(const NodeRecord &record, std::span<const RecordSetting> settings,
                                   const SecretString *password) {
    if (auto r = refuse_unfit(record, settings, password); !r) return r;
    WipedText text;
    if (auto r = read_record(record, text); !r) return r;
    WipedText out;
    std::size_t more = password_key.size() + 8 + (password ? password->size() : 0);
    for (const RecordSetting &s : settings) more += s.name.size() + s.value.size() + 4;
    out.reserve_more(text.text.size() + more);
    std::vector<bool> written(settings.size(), false);
    bool password_written = false;
    const auto add_line = [&](std::string_view name, std::string_view value) {
        out.text.append(name);
        out.text += " = ";
        out.text.append(value);
        out.text += '\n';
    };
    const auto add_missing = [&] {
        for (std::size_t i = 0; i < settings.size(); ++i) {
            if (!written[i]) add_line(settings[i].name, settings[i].value);
            written[i] = true;
        }
        if (password != nullptr && !password_written) add_line(password_key, password->reveal());
        password_written = true;
    };
    // Line by line over views: no stream buffer keeps a copy of the old password. A setting replaces its first
    // line in place (later copies dropped); the password goes last, before the end mark. The reservation above
    // covers the result, so `out` never reallocates and leaves no unwiped copy behind.
    for (std::string_view rest(text.text); !rest.empty();) {
        const std::string_view line = next_line(rest);
        const std::string_view name = line_name(line);
        if (name == password_key) continue;  // replaced below
        const auto setting = std::find_if(settings.begin(), settings.end(), [&](const RecordSetting &s) { return s.name == name; });
        if (setting != settings.end()) {
            const auto i = static_cast<std::size_t>(setting - settings.begin());
            if (!written[i]) add_line(setting->name, setting->value);
            written[i] = true;
            continue;
        }
        if (line.rfind("# END RECORD", 0) == 0) add_missing();
        out.text.append(line);
        out.text += '\n';
    }
    add_missing();
    if (out.text == text.text) return {};  // unchanged: no rewrite, no fsync
    if (auto r = replace_record(record, out.text); !r) {
        return make_error(Status::backend, fmt::format("{}: cannot replace node record {}: {}", field, record.path(), r.error().message));
    }
    return {};
}

Result<void> set_record_password(const NodeRecord &record, const SecretString *password) {
    return write_record_settings(record, {}, password);
}

Result<bool> record_has_password(const NodeRecord &record) {
    WipedText text;
    if (auto r = read_record(record, text); !r) return std::move(r).error();
    for (std::string_view rest(text.text); !rest.empty();) {
        if (is_password_line(next_line(rest))) return true;
    }
    return false;
}

}  // namespace ivd::host_path
