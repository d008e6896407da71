//! Seeded parameter initialisation.
//!
//! candle's CPU random generator cannot be seeded, so a model built from a plain
//! [`VarMap`] gets different weights every run. [`seeded_var_builder`] returns a
//! [`VarBuilder`] that creates the missing variables of a `VarMap` from a seeded
//! generator instead, honouring the [`Init`] hint each layer asks for. The same seed
//! and the same model code give bit-identical weights.

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{init::NormalOrUniform, Init, VarBuilder, VarMap};

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Where the generator stands: `SplitMix64::new(g.state())` continues exactly as `g`.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform sample in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform sample in `[lo, up)`.
    pub fn uniform(&mut self, lo: f64, up: f64) -> f64 {
        lo + (up - lo) * self.next_f64()
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A [`VarMap`] whose new variables come from a seeded generator.
struct SeededBackend {
    varmap: VarMap,
    rng: Mutex<SplitMix64>,
}

impl SeededBackend {
    fn sample(&self, shape: &Shape, init: Init) -> Vec<f64> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let uniform = |rng: &mut SplitMix64, lo: f64, up: f64| -> Vec<f64> {
            (0..n).map(|_| rng.uniform(lo, up)).collect()
        };
        match init {
            Init::Const(v) => vec![v; n],
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Randn { mean, stdev } => (0..n).map(|_| mean + stdev * rng.normal()).collect(),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                    NormalOrUniform::Normal => (0..n).map(|_| std * rng.normal()).collect(),
                }
            }
        }
    }
}

impl SimpleBackend for SeededBackend {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = data.get(name) {
            let t = var.as_tensor();
            if t.shape() != &s {
                candle_core::bail!(
                    "shape mismatch for {name}: expected {s:?}, found {:?}",
                    t.shape()
                );
            }
            return t.to_dtype(dtype);
        }
        let values = self.sample(&s, h);
        let tensor = Tensor::from_vec(values, s, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?;
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _dev: &Device) -> Result<Tensor> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        match data.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype),
            None => candle_core::bail!("cannot find tensor {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        data.contains_key(name)
    }
}

/// A [`VarBuilder`] over `varmap` that initialises new variables from `seed`.
///
/// Variables already in the map (loaded weights, say) are returned as they are.
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend = SeededBackend {
        varmap: varmap.clone(),
        rng: Mutex::new(SplitMix64::new(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

/// A linear layer initialised as PyTorch's `nn.Linear`: weight and bias uniform in ±1/√in.
///
/// candle-nn's `linear` draws its weight from a Kaiming normal instead; the chapter's
/// classifier head uses PyTorch's default, so this is what the models here use.
pub fn linear_torch(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<candle_nn::Linear> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(candle_nn::Linear::new(weight, Some(bias)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() -> Result<()> {
        let build = |seed| -> Result<Vec<f32>> {
            let vm = VarMap::new();
            let vb = seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu);
            let lin = linear_torch(16, 8, vb.pp("fc"))?;
            lin.weight().flatten_all()?.to_vec1::<f32>()
        };
        let a = build(7)?;
        assert_eq!(a, build(7)?);
        assert_ne!(a, build(8)?);
        let bound = 1.0 / 4.0;
        assert!(a.iter().all(|v| v.abs() <= bound));
        // Spread over the whole range, not a constant.
        let max = a.iter().cloned().fold(f32::MIN, f32::max);
        assert!(max > 0.2, "max {max}");
        Ok(())
    }

    #[test]
    fn existing_variables_are_kept() -> Result<()> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
        let w1 = vb.get_with_hints((2, 2), "w", Init::Const(3.0))?;
        let w2 = vb.get_with_hints((2, 2), "w", Init::Const(5.0))?;
        assert_eq!(w1.to_vec2::<f32>()?, w2.to_vec2::<f32>()?);
        assert!(vb.get_with_hints((3, 2), "w", Init::Const(0.0)).is_err());
        assert_eq!(vm.all_vars().len(), 1);
        Ok(())
    }

    #[test]
    fn normal_samples_have_unit_variance() {
        let mut rng = SplitMix64::new(3);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
