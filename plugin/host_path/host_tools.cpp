#include "host_path/host_tools.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace ivd::host_path {

namespace {

Status status_for_login_exit(const ProcessResult &r) {
    if (r.timed_out || r.exit_code == iscsi_err_trans_timeout) return Status::timeout;
    if (r.exit_code == iscsi_err_login_auth_failed) return Status::auth;
    return Status::unreachable;
}

}  // namespace

Result<void> HostTools::tool(const std::vector<std::string> &argv, std::initializer_list<int> also_ok) const {
    log_.debug("host_path", "run {}", describe_argv(argv));
    const ProcessResult r = run_process(argv, c_.command_timeout);
    if (r.started && !r.timed_out &&
        (r.exit_code == 0 || std::find(also_ok.begin(), also_ok.end(), r.exit_code) != also_ok.end())) {
        return {};
    }
    return make_error(r.timed_out ? Status::timeout : Status::backend,
                      fmt::format("{}: {}", describe_argv(argv), tool_message(r)));
}

Result<void> HostTools::iscsiadm(std::vector<std::string> args, std::initializer_list<int> also_ok) const {
    args.insert(args.begin(), c_.iscsiadm_path);
    return tool(args, also_ok);
}

ProcessResult HostTools::login(const request::Portal &portal, const std::string &iqn, const std::string &iface) const {
    const std::vector<std::string> argv = {c_.iscsiadm_path, "-m", "node", "-T", iqn, "-p", portal.to_string(),
                                           "--interface", iface, "--login"};
    log_.debug("host_path", "run {}", describe_argv(argv));
    return run_process(argv, c_.login_timeout);
}

std::optional<Error> HostTools::login_failure(const ProcessResult &r, const request::Portal &portal,
                                              const std::string &iqn) const {
    if (r.started && !r.timed_out && (r.exit_code == 0 || r.exit_code == iscsi_err_sess_exists)) return std::nullopt;
    return make_error(r.started ? status_for_login_exit(r) : Status::backend,
                      fmt::format("login to {} {} failed: {}", portal.to_string(), iqn, tool_message(r)));
}

Result<std::string> HostTools::show_iface(const std::string &name) const {
    const std::vector<std::string> argv = {c_.iscsiadm_path, "-m", "iface", "-I", name};
    log_.debug("host_path", "run {}", describe_argv(argv));
    ProcessResult r = run_process(argv, c_.command_timeout);
    if (r.started && !r.timed_out && r.exit_code == 0) return std::move(r.out);
    return make_error(r.timed_out ? Status::timeout : Status::not_found,
                      fmt::format("{}: {}", describe_argv(argv), tool_message(r)));
}

Result<void> HostTools::multipathd_resize_map(const std::string &map_name) const {
    const std::vector<std::string> argv = {c_.multipathd_path, "resize", "map", map_name};
    log_.debug("host_path", "run {}", describe_argv(argv));
    const ProcessResult r = run_process(argv, c_.command_timeout);
    std::string answer = r.out;
    while (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.back()))) answer.pop_back();
    if (r.started && !r.timed_out && r.exit_code == 0 && answer.find("fail") == std::string::npos &&
        answer.find("timeout") == std::string::npos) {
        return {};
    }
    const bool busy = r.timed_out || answer.find("timeout") != std::string::npos;
    return make_error(busy ? Status::timeout : Status::backend,
                      fmt::format("{}: {}", describe_argv(argv), answer.empty() ? tool_message(r) : answer));
}

Result<std::string> HostTools::multipathd_answer(const std::vector<std::string> &args) const {
    std::vector<std::string> argv = args;
    argv.insert(argv.begin(), c_.multipathd_path);
    log_.debug("host_path", "run {}", describe_argv(argv));
    const ProcessResult r = run_process(argv, c_.command_timeout);
    std::string answer = r.out;
    while (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.back()))) answer.pop_back();
    // Older multipathd exits 0 with "fail"; a lone "timeout" is its busy answer.
    const bool refused = answer == "fail" || answer == "timeout" || answer.rfind("fail\n", 0) == 0;
    if (r.started && !r.timed_out && r.exit_code == 0 && !refused) return answer;
    return make_error(r.timed_out || answer == "timeout" ? Status::timeout : Status::backend,
                      fmt::format("{}: {}", describe_argv(argv), answer.empty() ? tool_message(r) : answer));
}

Result<void> HostTools::multipathd_ok(const std::vector<std::string> &args) const {
    auto r = multipathd_answer(args);
    if (!r) return std::move(r).error();
    return {};
}

Result<void> HostTools::dmsetup(const std::vector<std::string> &args, std::chrono::milliseconds timeout) const {
    std::vector<std::string> argv = args;
    argv.insert(argv.begin(), c_.dmsetup_path);
    log_.debug("host_path", "run {}", describe_argv(argv));
    const ProcessResult r = run_process(argv, std::min(c_.command_timeout, timeout));
    if (r.started && !r.timed_out && r.exit_code == 0) return {};
    return make_error(r.timed_out ? Status::timeout : Status::backend,
                      fmt::format("{}: {}", describe_argv(argv), tool_message(r)));
}

Result<std::vector<std::string>> HostTools::multipathd_show_paths() const {
    auto answer = multipathd_answer({"show", "paths", "raw", "format", "%d"});
    if (!answer) return std::move(answer).error();
    std::vector<std::string> devices;
    std::size_t start = 0;
    while (start < answer->size()) {
        std::size_t end = answer->find('\n', start);
        if (end == std::string::npos) end = answer->size();
        std::string line = answer->substr(start, end - start);
        start = end + 1;
        // Trim; a name is [A-Za-z0-9!_-] as the kernel's (cciss!c0d0); anything else is not a path line.
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        line.erase(0, line.find_first_not_of(" \t"));
        const bool name = !line.empty() && std::all_of(line.begin(), line.end(), [](unsigned char ch) {
            return std::isalnum(ch) || ch == '!' || ch == '_' || ch == '-';
        });
        if (name) devices.push_back(std::move(line));
    }
    return devices;
}

}  // namespace ivd::host_path
