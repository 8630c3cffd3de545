// Where one connect or disconnect spent its time, step by step, for one log line per operation
// ("steps: connect VOL total=2100ms probe=120ms 10.0.2.2:3260{login=40ms scan=1ms ...} map=300ms ...").
// steady_clock reads only: cheap enough to run always; names and times, never a request's values.
#pragma once

#include "core/log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <string>
#include <string_view>

namespace ivd::host_path {

class StepTimes {
public:
    using Clock = std::chrono::steady_clock;

    // Starts the next step now (the time since the last lap is not counted anywhere).
    void restart() { last_ = Clock::now(); }
    // The time since the last lap (or restart, or construction) is step `name`.
    void lap(std::string_view name) {
        const auto now = Clock::now();
        add(name, now - last_);
        last_ = now;
    }
    void add(std::string_view name, Clock::duration d) {
        fmt::format_to(std::back_inserter(text_), " {}={}ms", name,
                       std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    }
    // Another timer's steps (one path's, timed in its own thread) as `label{...}`.
    void group(std::string_view label, const StepTimes &inner) {
        fmt::format_to(std::back_inserter(text_), " {}{{{}}}", label, inner.text_.empty() ? "" : inner.text_.substr(1));
    }
    // "total=NNms" and the steps in the order they were recorded.
    std::string line() const {
        return fmt::format("total={}ms{}",
                           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count(), text_);
    }

private:
    Clock::time_point start_ = Clock::now();
    Clock::time_point last_ = start_;
    std::string text_;
};

// A StepTimes whose line is logged (info) when the operation ends, however it ends.
class StepReport {
public:
    StepReport(const Logger &log, std::string_view operation, std::string volume)
        : log_(log), operation_(operation), volume_(std::move(volume)) {}
    ~StepReport() { log_.info("host_path", "steps: {} {} {}{}", operation_, volume_, failed_ ? "failed " : "", times.line()); }
    StepReport(const StepReport &) = delete;
    StepReport &operator=(const StepReport &) = delete;

    void succeeded() { failed_ = false; }
    StepTimes times;

private:
    const Logger &log_;
    std::string_view operation_;
    std::string volume_;
    bool failed_ = true;
};

}  // namespace ivd::host_path
