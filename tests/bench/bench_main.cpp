// ivd_bench: the benchmark driver. Each subcommand prints one JSON document on stdout; scripts/bench.sh runs
// them (interleaving compared variants) and writes bench-results/. Not a test: nothing here is registered in CTest.
#include "bench_main.hpp"

#include <cstdio>
#include <exception>
#include <map>
#include <string>

namespace ivd::bench {
int run_osbrick(const Args &args);  // bench_osbrick.cpp: real-kernel multipath, ours vs os-brick (tests/vm_lab)
int run_guest_scale(const Args &args);  // bench_guest_scale.cpp: the same, the next volume with N attached
}

int main(int argc, char **argv) {
    using namespace ivd::bench;
    const std::map<std::string, int (*)(const Args &)> commands{
        {"percall", run_percall}, {"percall-input", run_percall_input}, {"memory", run_memory},
        {"probe", run_probe},     {"multipath", run_multipath},         {"e2e", run_e2e},
        {"scale", run_scale},     {"osbrick", run_osbrick},             {"host-scale", run_host_scale},
        {"guest-scale", run_guest_scale},
    };
    if (argc < 2 || !commands.contains(argv[1])) {
        std::fprintf(stderr, "usage: ivd_bench percall|percall-input|memory|probe|multipath|host-scale|e2e|scale|osbrick|guest-scale [--opt value]...\n");
        return 2;
    }
    Args args;
    for (int i = 2; i < argc; ++i) args.raw.emplace_back(argv[i]);
    try {
        return commands.at(argv[1])(args);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "ivd_bench %s: %s\n", argv[1], e.what());
        return 1;
    }
}
