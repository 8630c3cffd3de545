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

}  // namespace ivd::host_path
