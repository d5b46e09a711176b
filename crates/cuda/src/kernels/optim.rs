//! Fused optimizer updates, one thread per element, following torch.optim's single-tensor
//! formulas (sgd.py, adam.py, rmsprop.py, adagrad.py) in their order of operations. State
//! buffers are read and written in the parameter dtype; absent buffers are null pointers.
//! Host-side scalars (bias corrections, clr) are computed in double as Python does.

/// CUDA C source (per dtype; used for float dtypes).
pub const SRC: &str = r#"
// torch.lerp: self + w * (end - self) for w < 0.5, else end - (end - self) * (1 - w).
__device__ __forceinline__ ACC lerp(ACC s, ACC e, ACC w) {
  return (w < (ACC)0.5) ? s + w * (e - s) : e - (e - s) * ((ACC)1 - w);
}

extern "C" __global__ void sgd(u64 n, T* p, const T* g, T* buf, double lr, double momentum, double dampening,
                               double wd, int nesterov, int maximize, int first) {
  GRID_LOOP(i, n) {
    ACC pv = lda(p[i]);
    ACC d = lda(g[i]);
    if (maximize) d = -d;
    if (wd != 0.0) d = lda(sta(d + (ACC)wd * pv));
    if (momentum != 0.0) {
      ACC b;
      if (first) {
        b = d;
      } else {
        b = lda(sta(lda(buf[i]) * (ACC)momentum));
        b = lda(sta(b + (ACC)(1.0 - dampening) * d));
      }
      buf[i] = sta(b);
      d = nesterov ? lda(sta(d + (ACC)momentum * b)) : b;
    }
    p[i] = sta(pv + (ACC)(-lr) * d);
  }
}

extern "C" __global__ void adam(u64 n, T* p, const T* g, T* m, T* v, T* vmax, double lr, double beta1, double beta2,
                                double eps, double wd, int amsgrad, int decoupled, int maximize,
                                double step_size, double bc2_sqrt) {
  GRID_LOOP(i, n) {
    ACC pv = lda(p[i]);
    ACC gr = lda(g[i]);
    if (maximize) gr = -gr;
    if (wd != 0.0) {
      if (decoupled) pv = lda(sta(pv * (ACC)(1.0 - lr * wd)));
      else gr = lda(sta(gr + (ACC)wd * pv));
    }
    ACC mv = lda(sta(lerp(lda(m[i]), gr, (ACC)(1.0 - beta1))));
    m[i] = sta(mv);
    ACC vv = lda(sta(lda(v[i]) * (ACC)beta2));
    vv = lda(sta(vv + (ACC)(1.0 - beta2) * gr * gr));
    v[i] = sta(vv);
    ACC den_src = vv;
    if (amsgrad) {
      ACC mx = lda(vmax[i]);
      mx = (mx != mx || mx > vv) ? mx : vv;
      vmax[i] = sta(mx);
      den_src = mx;
    }
    ACC den = lda(sta(m_sqrt(den_src) / (ACC)bc2_sqrt));
    den = lda(sta(den + (ACC)eps));
    p[i] = sta(pv + (ACC)(-step_size) * (mv / den));
  }
}

extern "C" __global__ void rmsprop(u64 n, T* p, const T* g, T* sq, T* buf, T* gavg, double lr, double alpha,
                                   double eps, double wd, double momentum, int centered, int maximize) {
  GRID_LOOP(i, n) {
    ACC pv = lda(p[i]);
    ACC gr = lda(g[i]);
    if (maximize) gr = -gr;
    if (wd != 0.0) gr = lda(sta(gr + (ACC)wd * pv));
    ACC s = lda(sta(lda(sq[i]) * (ACC)alpha));
    s = lda(sta(s + (ACC)(1.0 - alpha) * gr * gr));
    sq[i] = sta(s);
    ACC avg;
    if (centered) {
      ACC ga = lda(sta(lerp(lda(gavg[i]), gr, (ACC)(1.0 - alpha))));
      gavg[i] = sta(ga);
      avg = lda(sta(m_sqrt(lda(sta(s - ga * ga)))));
    } else {
      avg = lda(sta(m_sqrt(s)));
    }
    avg = lda(sta(avg + (ACC)eps));
    if (momentum > 0.0) {
      ACC b = lda(sta(lda(buf[i]) * (ACC)momentum));
      b = lda(sta(b + gr / avg));
      buf[i] = sta(b);
      p[i] = sta(pv - (ACC)lr * b);
    } else {
      p[i] = sta(pv + (ACC)(-lr) * (gr / avg));
    }
  }
}

extern "C" __global__ void adagrad(u64 n, T* p, const T* g, T* sum, double clr, double wd, double eps, int maximize) {
  GRID_LOOP(i, n) {
    ACC pv = lda(p[i]);
    ACC gr = lda(g[i]);
    if (maximize) gr = -gr;
    if (wd != 0.0) gr = lda(sta(gr + (ACC)wd * pv));
    ACC s = lda(sta(lda(sum[i]) + gr * gr));
    sum[i] = sta(s);
    ACC sd = lda(sta(lda(sta(m_sqrt(s))) + (ACC)eps));
    p[i] = sta(pv + (ACC)(-clr) * (gr / sd));
  }
}
"#;
