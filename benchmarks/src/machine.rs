//! The machine a benchmark ran on, and CPU time used during a phase (this process, and the
//! whole machine: the difference is mostly PostgreSQL).

use std::time::Instant;

/// Cores and memory, as printed with every result.
#[derive(Clone, Debug)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub cores: usize,
    /// `MemTotal` of /proc/meminfo, in bytes.
    pub memory_bytes: Option<u64>,
    pub cpu_model: Option<String>,
}

impl Machine {
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned());
        Machine {
            cores,
            memory_bytes,
            cpu_model,
        }
    }

    /// e.g. `2 cores, 23.4 GiB memory (Intel Xeon …)`.
    pub fn describe(&self) -> String {
        let memory = self
            .memory_bytes
            .map(|bytes| format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".to_owned());
        let model = self
            .cpu_model
            .as_deref()
            .map(|model| format!(" ({model})"))
            .unwrap_or_default();
        format!(
            "{} cores (available_parallelism), {memory} memory (MemTotal){model}",
            self.cores
        )
    }
}

/// How busy the machine is before a run (cores busy over `sample`): other work on the machine
/// distorts every figure, so the benchmarks print it.
pub fn background_load(sample: std::time::Duration) -> f64 {
    let before = CpuTimes::now();
    std::thread::sleep(sample);
    let after = CpuTimes::now();
    let wall = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    (after.machine_busy - before.machine_busy).max(0.0) / wall
}

/// Clock ticks per second of /proc's CPU times (USER_HZ, 100 on every Linux platform).
const USER_HZ: f64 = 100.0;

/// CPU time used so far, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct CpuTimes {
    pub at: Instant,
    /// This process (user + system).
    pub process: f64,
    /// Every CPU of the machine, busy (not idle, not waiting for I/O).
    pub machine_busy: f64,
}

impl CpuTimes {
    pub fn now() -> CpuTimes {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                // Fields after the command name (which is in parentheses and may hold spaces).
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
                let user: f64 = fields.get(11)?.parse().ok()?;
                let system: f64 = fields.get(12)?.parse().ok()?;
                Some((user + system) / USER_HZ)
            })
            .unwrap_or(0.0);
        let machine_busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let line = stat.lines().find(|line| line.starts_with("cpu "))?;
                let values: Vec<f64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|value| value.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal (guest is inside user).
                let busy: f64 = values
                    .iter()
                    .take(8)
                    .enumerate()
                    .filter(|(i, _)| *i != 3 && *i != 4)
                    .map(|(_, v)| v)
                    .sum();
                Some(busy / USER_HZ)
            })
            .unwrap_or(0.0);
        CpuTimes {
            at: Instant::now(),
            process,
            machine_busy,
        }
    }

    /// CPU used from `earlier` to `self`: (wall seconds, process CPU s, rest of machine CPU s).
    pub fn since(&self, earlier: &CpuTimes) -> CpuUse {
        let process = (self.process - earlier.process).max(0.0);
        let machine = (self.machine_busy - earlier.machine_busy).max(0.0);
        CpuUse {
            wall: self.at.duration_since(earlier.at).as_secs_f64(),
            process,
            others: (machine - process).max(0.0),
        }
    }
}

/// CPU seconds used during a phase.
#[derive(Clone, Copy, Debug)]
pub struct CpuUse {
    pub wall: f64,
    /// This process: the services and the load generator.
    pub process: f64,
    /// Everything else on the machine, mostly PostgreSQL.
    pub others: f64,
}

impl CpuUse {
    /// e.g. `CPU: 1.62 of 2 cores busy (this process 1.10, others (PostgreSQL) 0.52)`.
    pub fn describe(&self, cores: usize) -> String {
        let wall = self.wall.max(1e-9);
        format!(
            "{:.2} of {cores} cores busy (this process — services and load generator — {:.2}, other processes, mostly PostgreSQL, {:.2})",
            (self.process + self.others) / wall,
            self.process / wall,
            self.others / wall
        )
    }

    /// CPU microseconds per unit of work: (this process, others).
    pub fn per(&self, units: u64) -> (f64, f64) {
        let units = units.max(1) as f64;
        (self.process * 1e6 / units, self.others * 1e6 / units)
    }
}
