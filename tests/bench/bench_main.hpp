#pragma once

#include "bench_common.hpp"

#include <fmt/format.h>

namespace ivd::bench {
int run_percall(const Args &args);
int run_percall_input(const Args &args);
int run_memory(const Args &args);
int run_probe(const Args &args);
int run_multipath(const Args &args);
int run_host_scale(const Args &args);
int run_e2e(const Args &args);
int run_scale(const Args &args);
}  // namespace ivd::bench
