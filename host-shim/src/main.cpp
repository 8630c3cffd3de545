// volume-host: a stand-in compute service that loads volume drivers the way a nova-like host would.
#include "driver_loader.hpp"
#include "host_commands.hpp"
#include "ini_config.hpp"
#include "libvirt_domain.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifndef VOLUME_HOST_DEFAULT_CONFIG
#define VOLUME_HOST_DEFAULT_CONFIG "/etc/volume-host/volume-host.conf"
#endif

namespace {

using namespace volume_host;

// Every subcommand with its options; `run` calls the one given.
struct Commands {
    CLI::App *drivers = nullptr, *connector = nullptr, *connect = nullptr, *disconnect = nullptr,
             *disk_config = nullptr, *extend = nullptr, *cleanup = nullptr;
    ConnectorOptions connector_options;
    ConnectOptions connect_options;
    DisconnectOptions disconnect_options;
    V2CallOptions disk_config_options, extend_options;
    CleanupOptions cleanup_options;

    void add_to(CLI::App &app);
    int run(const GlobalOptions &global) const;

private:
    void add_volume_calls(CLI::App &app);
};

void Commands::add_to(CLI::App &app) {
    drivers = app.add_subcommand("drivers", "load every mapped driver and print the negotiated ABI versions");
    connector = app.add_subcommand("connector", "print the connector properties a driver reports for this host");
    connector->add_option("--type", connector_options.volume_type, "driver_volume_type of the driver to ask")
        ->capture_default_str();
    add_volume_calls(app);
    cleanup = app.add_subcommand("cleanup", "find what a crashed host left behind (e.g. libvirt secrets no "
                                            "domain uses) and remove it; prints a JSON report");
    cleanup->add_flag("--dry-run", cleanup_options.dry_run, "report only, remove nothing");
    cleanup->add_option("--type", cleanup_options.volume_type, "driver_volume_type of the driver to ask")
        ->capture_default_str();
}

// The calls on one volume: connect, disconnect, disk-config, extend.
void Commands::add_volume_calls(CLI::App &app) {
    connect = app.add_subcommand("connect", "connect a volume and print device_info");
    connect->add_option("CONNECTION_INFO", connect_options.connection_info, "file with connection_info JSON, or -")
        ->required();
    connect->add_option("CONNECTOR", connect_options.connector, "file with connector JSON, or -")->required();
    connect->add_option("--disk-info", connect_options.disk_info, "guest side, e.g. '{\"bus\":\"scsi\",\"dev\":\"sdb\"}'; without it (and without --attach) the volume is connected for the host alone (ABI v2)");
    connect->add_option("--attach", connect_options.attach_domain, "attach the disk to this running libvirt domain");

    disconnect = app.add_subcommand("disconnect", "disconnect a volume");
    disconnect->add_option("CONNECTION_INFO", disconnect_options.connection_info, "file with connection_info, or -")
        ->required();
    disconnect->add_option("DEVICE_INFO", disconnect_options.device_info, "file with device_info from connect, or -")
        ->required();
    disconnect->add_option("--detach", disconnect_options.detach_domain, "detach the disk from this domain first");
    disconnect->add_flag("--force", disconnect_options.force, "go on past a failed flush");
    disconnect->add_flag("--ignore-errors", disconnect_options.ignore_errors, "report failed steps but succeed");

    disk_config = app.add_subcommand("disk-config", "print the libvirt <disk> for a guest device of a connected "
                                                    "volume (ABI v2 disk_config; no I/O)");
    disk_config->add_option("CONNECTION_INFO", disk_config_options.connection_info, "file with connection_info, or -")
        ->required();
    disk_config->add_option("DEVICE_INFO", disk_config_options.device_info, "file with device_info from connect, or -")
        ->required();
    disk_config->add_option("--disk-info", disk_config_options.disk_info,
                            "guest side, e.g. '{\"dev\":\"sdb\",\"bus\":\"scsi\",\"unit\":1}'")
        ->required();

    extend = app.add_subcommand("extend", "print the volume's size as the storage reports it now (ABI v2 "
                                          "extend_volume), e.g. after the volume grew");
    extend->add_option("CONNECTION_INFO", extend_options.connection_info, "file with connection_info, or -")->required();
    extend->add_option("DEVICE_INFO", extend_options.device_info, "file with device_info from connect, or -")->required();
}

int Commands::run(const GlobalOptions &global) const {
    if (*drivers) return run_drivers(global);
    if (*connector) return run_connector(global, connector_options);
    if (*connect) return run_connect(global, connect_options);
    if (*disconnect) return run_disconnect(global, disconnect_options);
    if (*cleanup) return run_cleanup(global, cleanup_options);
    if (*disk_config) return run_v2_call(global, disk_config_options);
    if (*extend) return run_v2_call(global, extend_options);
    return exit_usage;
}

}  // namespace

int main(int argc, char **argv) {
    // A libvirtd restart mid-call closes the socket under us: get EPIPE as an error, not a fatal signal.
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"volume-host: attach volumes to libvirt domains through volume driver modules "
                 "(selected by a nova.conf-style volume_drivers mapping)"};
    app.require_subcommand(1);
    app.footer("Environment: VOLUME_HOST_EXTRA_CONFIG=FILE is read after the --config file; each key it sets "
               "replaces the same key of the same section.");
    GlobalOptions global;
    global.config_path = VOLUME_HOST_DEFAULT_CONFIG;
    if (const char *extra = std::getenv("VOLUME_HOST_EXTRA_CONFIG"); extra != nullptr) global.extra_config_path = extra;
    app.add_option("--config", global.config_path, "INI file with [DEFAULT] volume_drivers = type=module,...")
        ->capture_default_str();
    app.add_option("--log-level", global.log_level, "driver log messages shown on stderr")
        ->check(CLI::IsMember({"error", "warning", "info", "debug"}))
        ->capture_default_str();
    Commands commands;
    commands.add_to(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        print_error(ShimError{"usage", e.what(), exit_usage});
        return exit_usage;
    }

    int rc = exit_usage;
    try {
        rc = commands.run(global);
    } catch (const std::exception &e) {
        print_error(ShimError{"internal_error", e.what(), 1});
        rc = 1;
    }
    // A thread still blocked inside libvirt (a daemon that never answered) must not meet exit's destructors
    // and atexit handlers tearing down state it may touch when it wakes: leave with the output flushed only.
    if (libvirt_thread_abandoned()) {
        std::cout.flush();
        std::fflush(nullptr);
        std::_Exit(rc);
    }
    return rc;
}
