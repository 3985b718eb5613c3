#pragma once
// What the load generators share (bench/loadgen, bench/mqtt): their common
// flags, clocks and pacing, CPU time and memory of a process from /proc,
// latency percentiles, and the latency file the plots are drawn from.
// Header-only; Linux only.

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace haven::bench_util {

using steady = std::chrono::steady_clock;

// steady_clock's now in nanoseconds: the send time a message carries. Both
// ends of a run live in one process, so the clocks agree.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

inline double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The flags both load generators take, with one set of defaults: bench/run.sh
// hands both the same words, and the comparison holds only if they agree.
struct load_options {
  unsigned short port = 0;
  std::string mode = "online";   // online, offline, fanout or idle
  std::size_t connections = 50;  // fanout: the group's members (default 1,000 there)
  std::size_t messages = 2000;   // per sending connection
  std::size_t senders = 1;       // fanout: members 0..senders-1 send to the group
  std::size_t size = 1024;
  std::size_t window = 32;
  double rate = 0;  // total msg/s over all senders; 0 = as fast as possible
  double timeout = 120;
  double settle = 2;        // idle: seconds between the last log-in and the measurement
  std::string json;         // file to write the result object to; "-" for stdout
  std::string latency_out;  // the latency distribution, for plots
  int server_pid = 0;
};

// Adds the flags that read the same for both load generators: --timeout,
// --json and --latency-out.
inline void add_output_options(CLI::App& app, load_options& o) {
  app.add_option("--timeout", o.timeout, "Seconds before the run gives up (and fails)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--json", o.json, "Write the result as one JSON object to FILE ('-': stdout)");
  app.add_option("--latency-out", o.latency_out,
                 "Write the latency distribution (ms, cumulative fraction) to FILE");
}

// When message k of sender `slot` (of `senders`) is due, paced at `rate`
// messages/s in total from `start`: at (k * senders + slot) / rate seconds,
// so the senders interleave evenly.
inline steady::time_point pace_due(steady::time_point start, std::uint64_t k, std::size_t senders,
                                   std::size_t slot, double rate) {
  const double due_s =
      (static_cast<double>(k) * static_cast<double>(senders) + static_cast<double>(slot)) / rate;
  return start + std::chrono::nanoseconds(static_cast<std::int64_t>(due_s * 1e9));
}

struct stat_cpu {
  std::string name;    // comm
  double seconds = 0;  // utime + stime
};

// A /proc/.../stat file's command name and CPU seconds.
inline std::optional<stat_cpu> read_stat_cpu(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto open = line.find('(');
  const auto close = line.rfind(')');  // the command name may hold spaces
  if (open == std::string::npos || close == std::string::npos || close + 2 > line.size())
    return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string skip;
  for (int field = 3; field <= 13; ++field) fields >> skip;  // state .. cmajflt
  unsigned long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return stat_cpu{line.substr(open + 1, close - open - 1),
                  static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK))};
}

// utime + stime of a process in seconds, from /proc/PID/stat.
inline std::optional<double> process_cpu_seconds(int pid) {
  auto s = read_stat_cpu("/proc/" + std::to_string(pid) + "/stat");
  if (!s) return std::nullopt;
  return s->seconds;
}

// The same per thread (/proc/PID/task/TID/stat), by thread id.
inline std::map<long, stat_cpu> thread_cpu_seconds(int pid) {
  std::map<long, stat_cpu> out;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(tasks, ec)) {
    const auto tid = entry.path().filename().string();
    if (auto s = read_stat_cpu(entry.path().string() + "/stat")) out[std::stol(tid)] = *s;
  }
  return out;
}

inline double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

// "Key:   123 kB" lines of a /proc file, in KiB (or the bare number).
inline std::map<std::string, long long> read_proc_kib(const std::string& path) {
  std::map<std::string, long long> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream value(line.substr(colon + 1));
    long long v = 0;
    if (value >> v) out[line.substr(0, colon)] = v;
  }
  return out;
}

// Bytes a process has had written to storage (/proc/PID/io write_bytes:
// page cache pages it dirtied, so a page rewritten after each sync counts
// each time); none where the kernel does not account I/O.
inline std::optional<long long> process_write_bytes(int pid) {
  auto io = read_proc_kib("/proc/" + std::to_string(pid) + "/io");
  const auto it = io.find("write_bytes");
  if (it == io.end()) return std::nullopt;
  return it->second;
}

// A point in time with the CPU the server and this process had used by then.
struct mark {
  steady::time_point at;
  std::optional<double> server_cpu;  // none without a server pid
  double self_cpu = 0;
  std::map<long, stat_cpu> server_threads;      // only if asked for
  std::optional<long long> server_write_bytes;  // none without a server pid
};

inline mark take_mark(int server_pid, bool per_thread) {
  mark m{steady::now(), std::nullopt, self_cpu_seconds(), {}, std::nullopt};
  if (server_pid > 0) {
    m.server_cpu = process_cpu_seconds(server_pid);
    if (per_thread) m.server_threads = thread_cpu_seconds(server_pid);
    m.server_write_bytes = process_write_bytes(server_pid);
  }
  return m;
}

// A process's memory and the kernel's socket memory at one moment. User
// space: VmRSS and RssAnon (/proc/PID/status), Anonymous and
// Private_Dirty (/proc/PID/smaps_rollup: the heap, stacks and other private
// pages). Kernel, machine-wide: slab (socket structures, epoll items,
// files) and the TCP buffer pages of /proc/net/sockstat.
struct memory_snapshot {
  long long rss_kib = 0;
  long long anon_kib = 0;           // RssAnon
  long long smaps_anon_kib = 0;     // smaps_rollup Anonymous
  long long private_dirty_kib = 0;  // smaps_rollup Private_Dirty
  long long slab_kib = 0;           // /proc/meminfo Slab
  long long tcp_mem_pages = 0;      // /proc/net/sockstat TCP mem
  long long open_files = 0;         // entries in /proc/PID/fd
};

inline memory_snapshot read_memory(int pid) {
  memory_snapshot m;
  const auto base = "/proc/" + std::to_string(pid);
  auto status = read_proc_kib(base + "/status");
  m.rss_kib = status["VmRSS"];
  m.anon_kib = status["RssAnon"];
  auto rollup = read_proc_kib(base + "/smaps_rollup");
  m.smaps_anon_kib = rollup["Anonymous"];
  m.private_dirty_kib = rollup["Private_Dirty"];
  m.slab_kib = read_proc_kib("/proc/meminfo")["Slab"];
  std::ifstream sockstat("/proc/net/sockstat");
  for (std::string line; std::getline(sockstat, line);) {
    if (!line.starts_with("TCP:")) continue;
    const auto at = line.find(" mem ");
    if (at != std::string::npos) m.tcp_mem_pages = std::stoll(line.substr(at + 5));
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(base + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++m.open_files;
  return m;
}

// The q-quantile (nearest rank) of sorted nanosecond samples, in ms.
inline double percentile_ms(const std::vector<std::int64_t>& sorted, double q) {
  const auto n = sorted.size();
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
  rank = std::clamp<std::size_t>(rank, 1, n);
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

// Writes "latency_ms fraction_at_or_below" lines of sorted samples: every
// sample of the top 1 %, and about 2,000 evenly spaced below that, which is
// all a CDF plot needs. Returns false if the file cannot be written.
inline bool write_latency_cdf(const std::string& file, const std::vector<std::int64_t>& sorted) {
  std::ofstream out(file);
  const auto n = sorted.size();
  if (n == 0) return static_cast<bool>(out);
  const std::size_t tail = n - n / 100;
  const std::size_t step = std::max<std::size_t>(1, tail / 2000);
  out << "# latency_ms cumulative_fraction (" << n << " samples)\n";
  for (std::size_t i = 0; i < n; ++i) {
    if (i < tail && i % step != 0) continue;
    out << static_cast<double>(sorted[i]) / 1e6 << ' '
        << static_cast<double>(i + 1) / static_cast<double>(n) << '\n';
  }
  return static_cast<bool>(out);
}

// How a load generator words its summary lines.
struct summary_words {
  const char* tool;     // "haven_loadgen"
  const char* senders;  // "senders" x M messages
  const char* shape;    // after the message size: "" or ", QoS 1"
  const char* sends;    // what the rate counts: "durable-ack sends"
  const char* server;   // "havend": its CPU, its memory
  const char* done;     // the last line: every send acknowledged, ...
  const char* idle;     // after "idle: N ": "connections logged in, idle"
  const char* ends;     // whose sockets the slab figure counts: "both ends of loopback"
};

// Writes `j` as one line to `file` ("-": stdout; empty: nowhere). Returns
// the exit status: 0, or 1 after saying why on stderr.
inline int write_json(const nlohmann::json& j, const std::string& file, const summary_words& w) {
  if (file.empty()) return 0;
  if (file == "-") {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::ofstream f(file);
  f << j.dump() << "\n";
  if (f) return 0;
  std::cerr << w.tool << ": cannot write " << file << "\n";
  return 1;
}

// The moments of an online or offline run.
struct run_marks {
  mark send_begin;                   // sending starts
  mark sends_done;                   // the last send acknowledged
  mark drain_begin;                  // offline: the recipients come back
  mark end;                          // every message delivered (and acknowledged)
  steady::time_point last_delivery;  // fanout: the last delivery arrived
};

// Reports a finished online, offline or fanout run of `senders` x
// o.messages messages, each delivered exactly once (fanout: `deliveries` in
// all, once to each member but the sender): adds the rates, the percentiles
// of the latency samples `lat` (whose distribution goes to --latency-out),
// the offline drain, the fan-out deliveries and the CPU and storage writes
// of the server and the CPU of this process to `j`, which holds what only
// the caller knows; prints the summary (with the server's CPU by thread if
// `j` holds "server_threads") and writes --json. Returns the exit status: 0,
// or 1 after saying on stderr which file could not be written.
inline int report_run(nlohmann::json j, const load_options& o, std::size_t senders,
                      std::vector<std::int64_t> lat, const run_marks& m, const summary_words& w,
                      std::size_t deliveries = 0) {
  using nlohmann::json;
  const bool offline = o.mode == "offline";
  const bool fanout = o.mode == "fanout";
  const auto n = static_cast<double>(senders * o.messages);
  const auto d = static_cast<double>(deliveries);
  j["mode"] = o.mode;
  j["senders"] = senders;
  j["messages"] = senders * o.messages;
  j["messages_per_connection"] = o.messages;
  j["size"] = o.size;
  j["window"] = o.window;
  j["rate"] = o.rate > 0 ? json(o.rate) : json(nullptr);
  j["seconds"] = seconds_between(m.send_begin.at, m.end.at);
  const double send_seconds = seconds_between(m.send_begin.at, m.sends_done.at);
  j["sends_per_s"] = n / send_seconds;

  std::ranges::sort(lat);
  if (!lat.empty()) {
    j["p50_ms"] = percentile_ms(lat, 0.50);
    j["p99_ms"] = percentile_ms(lat, 0.99);
    j["p999_ms"] = percentile_ms(lat, 0.999);
    j["max_ms"] = static_cast<double>(lat.back()) / 1e6;
    if (!o.latency_out.empty() && !write_latency_cdf(o.latency_out, lat)) {
      std::cerr << w.tool << ": cannot write " << o.latency_out << "\n";
      return 1;
    }
  } else {
    j["p50_ms"] = j["p99_ms"] = j["p999_ms"] = j["max_ms"] = nullptr;
  }
  if (offline) {
    j["queue_per_s"] = n / send_seconds;
    j["drain_seconds"] = seconds_between(m.drain_begin.at, m.end.at);
    j["drain_per_s"] = n / seconds_between(m.drain_begin.at, m.end.at);
  } else {
    j["drain_per_s"] = nullptr;
  }
  // Fan-out: every delivery to every member, from the first send to the last delivery.
  const double delivery_seconds = fanout ? seconds_between(m.send_begin.at, m.last_delivery) : 0;
  j["deliveries"] = fanout ? json(deliveries) : json(nullptr);
  j["deliveries_per_s"] = fanout ? json(d / delivery_seconds) : json(nullptr);
  const auto cpu = [](const mark& a, const mark& b) -> json {
    if (!a.server_cpu || !b.server_cpu) return nullptr;
    return *b.server_cpu - *a.server_cpu;
  };
  j["server_cpu_s"] = cpu(m.send_begin, m.end);
  j["server_cpu_us_per_msg"] =
      j["server_cpu_s"].is_null() ? json(nullptr) : json(j["server_cpu_s"].get<double>() / n * 1e6);
  j["server_cpu_us_per_delivery"] = j["server_cpu_s"].is_null() || !fanout
                                        ? json(nullptr)
                                        : json(j["server_cpu_s"].get<double>() / d * 1e6);
  const bool wrote = m.send_begin.server_write_bytes && m.end.server_write_bytes;
  j["server_write_bytes"] =
      wrote ? json(*m.end.server_write_bytes - *m.send_begin.server_write_bytes) : json(nullptr);
  j["server_write_bytes_per_msg"] =
      wrote ? json(j["server_write_bytes"].get<double>() / n) : json(nullptr);
  if (offline) {
    j["server_cpu_queue_s"] = cpu(m.send_begin, m.sends_done);
    j["server_cpu_drain_s"] = cpu(m.drain_begin, m.end);
  }
  j["loadgen_cpu_s"] = m.end.self_cpu - m.send_begin.self_cpu;

  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(0);
  out << w.tool << " " << o.mode << ": " << senders << " " << w.senders << " x " << o.messages
      << " messages of " << o.size << " B" << w.shape << ", window " << o.window;
  if (o.rate > 0) out << ", paced at " << o.rate << " msg/s";
  if (fanout) out << ", each to " << d / n << " members";
  out << "\n  " << w.sends << ": " << n / send_seconds << " msg/s";
  out.precision(2);
  out << " (" << send_seconds << " s)\n";
  if (fanout) {
    out.precision(0);
    out << "  deliveries: " << j["deliveries_per_s"].get<double>() << " /s (" << d << " in ";
    out.precision(2);
    out << delivery_seconds << " s)\n";
  }
  if (!lat.empty()) {
    out.precision(3);
    out << "  send-to-delivery latency: p50 " << j["p50_ms"].get<double>() << " ms, p99 "
        << j["p99_ms"].get<double>() << " ms, p99.9 " << j["p999_ms"].get<double>() << " ms, max "
        << j["max_ms"].get<double>() << " ms\n";
  }
  if (offline) {
    out.precision(0);
    out << "  drain after reconnect: " << j["drain_per_s"].get<double>() << " msg/s";
    out.precision(2);
    out << " (" << j["drain_seconds"].get<double>() << " s)\n";
  }
  out.precision(2);
  if (!j["server_cpu_s"].is_null()) {
    out << "  " << w.server << " CPU: " << j["server_cpu_s"].get<double>() << " s ("
        << j["server_cpu_us_per_msg"].get<double>() << " us per message";
    if (fanout) out << ", " << j["server_cpu_us_per_delivery"].get<double>() << " us per delivery";
    out << ")\n";
  }
  if (wrote) {
    out.precision(1);
    out << "  " << w.server
        << " storage writes: " << j["server_write_bytes"].get<double>() / 1048576.0 << " MiB ("
        << j["server_write_bytes_per_msg"].get<double>() / 1024.0 << " KiB per message)\n";
    out.precision(2);
  }
  if (j.contains("server_threads") && !j["server_threads"].empty()) {
    out << "  " << w.server << " CPU by thread:";
    for (const auto& t : j["server_threads"])
      out << " " << (t["main"].get<bool>() ? std::string("main") : t["name"].get<std::string>())
          << "[" << t["tid"].get<long>() << "] " << t["cpu_s"].get<double>() << " s";
    out << "\n";
  }
  out << "  loadgen CPU: " << j["loadgen_cpu_s"].get<double>() << " s\n";
  out << "  " << w.done << "\n";
  std::cout << out.str() << std::flush;
  return write_json(j, o.json, w);
}

// Reports an idle run: `connections` opened (and logged in) in
// `register_seconds`, and, with --server-pid, the server's memory `before`
// the first and `after` the last, per connection. Prints the summary and
// writes --json; returns the exit status.
inline int report_idle(nlohmann::json j, const load_options& o, std::size_t connections,
                       double register_seconds, const memory_snapshot& before,
                       const memory_snapshot& after, const summary_words& w) {
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  j["mode"] = "idle";
  j["connections"] = connections;
  j["register_seconds"] = register_seconds;
  j["open_files_soft"] = nofile.rlim_cur;
  j["open_files_hard"] = nofile.rlim_max;
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(0);
  out << w.tool << " idle: " << connections << " " << w.idle << "\n";
  if (o.server_pid > 0) {
    const auto per = [&](long long b, long long a) {
      return static_cast<double>(a - b) * 1024.0 / static_cast<double>(connections);
    };
    j["server_rss_before_kib"] = before.rss_kib;
    j["server_rss_after_kib"] = after.rss_kib;
    j["server_anon_before_kib"] = before.smaps_anon_kib;
    j["server_anon_after_kib"] = after.smaps_anon_kib;
    j["server_open_files"] = after.open_files;
    j["rss_bytes_per_connection"] = per(before.rss_kib, after.rss_kib);
    j["anon_bytes_per_connection"] = per(before.smaps_anon_kib, after.smaps_anon_kib);
    j["kernel_slab_bytes_per_connection"] = per(before.slab_kib, after.slab_kib);
    j["kernel_tcp_mem_pages_delta"] = after.tcp_mem_pages - before.tcp_mem_pages;
    out << "  " << w.server
        << " memory per connection: " << j["anon_bytes_per_connection"].get<double>()
        << " B anonymous, " << j["rss_bytes_per_connection"].get<double>() << " B RSS; kernel slab "
        << j["kernel_slab_bytes_per_connection"].get<double>() << " B (" << w.ends << ")\n";
  }
  std::cout << out.str() << std::flush;
  return write_json(j, o.json, w);
}

}  // namespace haven::bench_util
