//! The GRU step: gates r, z, n (PyTorch's order), state `h`.

use super::math::{sigmoid, tanh};
use super::Rows;

/// The GRU family. The recurrent projection stays apart ([`Rows::SPLIT`]) because the
/// `n` gate multiplies its part by `r`; each step saves `W_hn h + b_hn`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GruRows;

impl Rows for GruRows {
    const GATES: usize = 3;
    const CELL: bool = false;
    const SPLIT: bool = true;
    const SAVED: usize = 1;

    /// PyTorch's `nn.GRU`, from `gi = W_i x + b_i` and `gh = W_h h + b_h`:
    ///
    /// ```text
    /// r  = σ(gi_r + gh_r)
    /// z  = σ(gi_z + gh_z)
    /// n  = tanh(gi_n + r ⊙ gh_n)
    /// h' = (1 − z) ⊙ n + z ⊙ h
    /// ```
    ///
    /// `gates` keeps `[r | z | n]`.
    #[inline(always)]
    fn forward(
        self,
        gates: &mut [f32],
        hid: &[f32],
        h_prev: &[f32],
        _c_prev: &[f32],
        h_out: &mut [f32],
        saved: &mut [f32],
    ) {
        let h = h_prev.len();
        let (rz, n) = gates[..3 * h].split_at_mut(2 * h);
        let (hid_rz, hid_n) = hid[..3 * h].split_at(2 * h);
        for (v, &a) in rz.iter_mut().zip(hid_rz) {
            *v = sigmoid(*v + a);
        }
        let (r, z) = rz.split_at(h);
        saved[..h].copy_from_slice(hid_n);
        // Two simple passes, which LLVM vectorises reliably (one fused loop did not).
        for ((nv, &r), &a) in n.iter_mut().zip(r).zip(hid_n) {
            *nv = r.mul_add(a, *nv);
        }
        for nv in n.iter_mut() {
            *nv = tanh(*nv);
        }
        // h' = n + z ⊙ (h − n)
        for (((ho, &z), &n), &hp) in h_out[..h].iter_mut().zip(z).zip(n.iter()).zip(h_prev) {
            *ho = z.mul_add(hp - n, n);
        }
    }

    #[inline(always)]
    fn backward(
        self,
        dh: &[f32],
        _dc: &mut [f32],
        gates: &mut [f32],
        d_hid: &mut [f32],
        saved: &[f32],
        h_prev: &[f32],
        _c_prev: &[f32],
        dh_prev: &mut [f32],
    ) {
        let h = h_prev.len();
        let (r, rest) = gates[..3 * h].split_at_mut(h);
        let (z, n) = rest.split_at_mut(h);
        let (d_hid_rz, d_hid_n) = d_hid[..3 * h].split_at_mut(2 * h);
        let (dh, hid_n, dh_prev) = (&dh[..h], &saved[..h], &mut dh_prev[..h]);
        for j in 0..h {
            let (rv, zv, nv) = (r[j], z[j], n[j]);
            // dh_prev (direct) = dh ⊙ z;  d z_pre = dh ⊙ (h − n) ⊙ z(1 − z)
            dh_prev[j] = dh[j] * zv;
            let dz = dh[j] * (h_prev[j] - nv) * zv * (1.0 - zv);
            // d n_pre = dh ⊙ (1 − z) ⊙ (1 − n²);  d r_pre = d n_pre ⊙ gh_n ⊙ r(1 − r)
            let dn = dh[j] * (1.0 - zv) * (1.0 - nv * nv);
            let dr = dn * hid_n[j] * rv * (1.0 - rv);
            r[j] = dr;
            z[j] = dz;
            n[j] = dn;
            d_hid_n[j] = dn * rv;
        }
        d_hid_rz[..h].copy_from_slice(r);
        d_hid_rz[h..].copy_from_slice(z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        for (h, seed) in [(1, 0.0), (3, 1.0), (17, 2.5)] {
            super::super::check_finite_differences(GruRows, h, seed);
        }
    }
}
