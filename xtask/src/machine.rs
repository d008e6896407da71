//! The machine side of the benchmarks: which instruction sets both sides may use
//! (`--isa`), our builds, the CPU and its load, the PyTorch interpreter and its ceiling.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::lines::{capture_row, field, num};
use crate::{cargo, run_cmd, target_dir};

/// The instruction sets both sides of a benchmark may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Whatever the CPU has.
    Best,
    /// AVX2 + FMA at most, on both sides (`--isa avx2`): an AVX2 machine's code paths on an
    /// AVX-512 one. Ours is built without lstm-core's `avx512` feature (its native build
    /// for `x86-64-v3`); PyTorch runs with oneDNN, MKL and ATen capped at AVX2.
    Avx2,
}

impl Isa {
    /// `--isa VALUE` from the arguments (`best` when absent).
    pub fn from_args(args: &[String]) -> Result<Self> {
        match args.iter().position(|a| a == "--isa") {
            None => Ok(Isa::Best),
            Some(i) => match args.get(i + 1).map(String::as_str) {
                Some("best") => Ok(Isa::Best),
                Some("avx2") => Ok(Isa::Avx2),
                other => bail!("--isa takes best or avx2, got {other:?}"),
            },
        }
    }

    /// The suffix of the report files and build directories (`-avx2`, or none).
    pub fn suffix(self) -> &'static str {
        match self {
            Isa::Best => "",
            Isa::Avx2 => "-avx2",
        }
    }

    /// The report's line about it.
    pub fn line(self) -> &'static str {
        match self {
            Isa::Best => "Instruction sets: all the CPU has, on both sides",
            Isa::Avx2 => "Instruction sets: AVX2 + FMA at most, on both sides (--isa avx2): ours without lstm-core's `avx512` feature, its native build for x86-64-v3; PyTorch with ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2, ATEN_CPU_CAPABILITY=avx2",
        }
    }

    /// A PyTorch command (`python script`) limited to these instruction sets.
    pub fn torch(self, python: &str, script: &Path) -> Command {
        let mut c = Command::new(python);
        c.arg(script);
        if self == Isa::Avx2 {
            c.env("ONEDNN_MAX_CPU_ISA", "AVX2")
                .env("MKL_ENABLE_INSTRUCTIONS", "AVX2")
                .env("ATEN_CPU_CAPABILITY", "avx2");
        }
        c
    }
}

/// Builds `lstm-bench` in release: the plain build (empty `RUSTFLAGS`, which overrides
/// `build.rustflags`) into `target/plain`, or the default native one; returns its path.
/// With [`Isa::Avx2`], without the `avx512` feature, native meaning `x86-64-v3`, into
/// directories of their own.
pub fn build_ours(root: &Path, plain: bool, isa: Isa) -> Result<PathBuf> {
    let mut cmd = cargo(root);
    cmd.args(["build", "--release", "-p", "lstm-bench"])
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let dir = match (plain, isa) {
        (true, _) => {
            cmd.env("RUSTFLAGS", "");
            target_dir(root).join(format!("plain{}", isa.suffix()))
        }
        (false, Isa::Best) => {
            cmd.env_remove("RUSTFLAGS");
            target_dir(root)
        }
        (false, Isa::Avx2) => {
            cmd.env("RUSTFLAGS", "-C target-cpu=x86-64-v3");
            target_dir(root).join("native-avx2")
        }
    };
    if isa == Isa::Avx2 {
        cmd.arg("--no-default-features");
    }
    if dir != target_dir(root) {
        cmd.arg("--target-dir").arg(&dir);
    }
    run_cmd(&mut cmd)?;
    Ok(dir.join("release").join("lstm-bench"))
}

/// The CPU's model name and its AVX-512, AVX2 and FMA flags, from `/proc/cpuinfo`.
pub(crate) fn cpu_info() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let value = |key: &str| {
        info.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = value("model name").unwrap_or_else(|| "unknown CPU".into());
    let flags: Vec<String> = value("flags")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|f| f.starts_with("avx512") || *f == "avx2" || *f == "fma")
        .map(String::from)
        .collect();
    let flags = if flags.is_empty() {
        "none of avx512*/avx2/fma".into()
    } else {
        flags.join(" ")
    };
    (model, flags)
}

/// The interpreter for `scripts/bench_torch.py` (`$LSTM_BENCH_PYTHON`, else `python3`) and
/// whether it can import torch.
pub(crate) fn torch_python() -> (String, bool) {
    let python = std::env::var("LSTM_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    (python, has_torch)
}

/// The PyTorch ceiling: GFLOP/s of a 2048³ f32 matmul on 2 threads, measured by
/// `bench_torch.py --ceiling`, and the torch version that measured it.
pub(crate) fn ceiling(python: &str, script: &Path, isa: Isa) -> Result<(f64, String)> {
    let row = capture_row(isa.torch(python, script).arg("--ceiling"))?;
    Ok((num(&row, "gflops"), field(&row, "torch").to_string()))
}

/// The FMA peak of 2 threads and the instruction set that reached it, measured by our
/// build `bench` (`lstm-bench peak`): the cores' physical ceiling, which MKL's SGEMM (the
/// matmul ceiling) is well below on some CPUs (AMD Zen 5: `docs/benchmarks.md`).
pub(crate) fn fma_peak(bench: &Path) -> Result<(f64, String)> {
    let row = capture_row(Command::new(bench).args(["peak", "--threads", "2"]))?;
    Ok((num(&row, "gflops"), field(&row, "isa").to_string()))
}

/// The ceilings a row's GFLOP/s are set against (NaN: not measured).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ceilings {
    /// PyTorch's 2048³ `torch.matmul` on 2 threads (MKL's SGEMM).
    pub matmul: f64,
    /// The FMA peak of 2 threads ([`fma_peak`]).
    pub fma: f64,
}

/// The ceilings used (the highest of each list, measured before and after the runs) and
/// the report's lines saying so; `isa` names the FMA peak's instruction set.
pub(crate) fn ceiling_lines(matmul: &[f64], fma: &[f64], isa: &str) -> (Ceilings, String) {
    let highest = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let c = Ceilings {
        matmul: highest(matmul),
        fma: highest(fma),
    };
    let m = match matmul {
        [a, b] => format!("Ceiling: torch.matmul 2048³ f32, 2 threads: {a:.1} GFLOP/s before the runs, {b:.1} after; the higher, {:.1}, is the ceiling", c.matmul),
        _ => "Ceiling: not measured (no PyTorch)".to_string(),
    };
    let f = match fma {
        [a, b] => format!("FMA peak: `lstm-bench peak`, 2 threads of independent {isa} FMAs: {a:.1} GFLOP/s before the runs, {b:.1} after; the higher, {:.1}, is the peak (the second share after each GFLOP/s)", c.fma),
        _ => "FMA peak: not measured".to_string(),
    };
    (c, format!("{m}\n{f}"))
}

/// Whether ours gets `RAYON_NUM_THREADS=2` (only on a machine of more than 2 CPUs; PyTorch
/// always runs `torch.set_num_threads(2)`) and the header line that says so.
pub(crate) fn threads(cpus: usize) -> (bool, String) {
    if cpus > 2 {
        (true, format!("Threads: 2 (RAYON_NUM_THREADS=2 set for ours, {cpus} CPUs here; PyTorch torch.set_num_threads(2))"))
    } else {
        (false, "Threads: 2 on both sides (ours: candle's default, RAYON_NUM_THREADS not set; PyTorch: torch.set_num_threads(2))".to_string())
    }
}

/// The 1-minute load average from `/proc/loadavg` (`?` where there is none).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
