//! Graph capture and replay: random op chains replay bit-identically, bad inputs are errors
//! naming the placeholder, value reads are reported, and the simplifier's passes.

use mlfw_core::graph::{Capture, Graph, NodeKind};
use mlfw_core::{DType, Device, Generator, Result, Tensor};

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(0.0, 1.0, shape, DType::F32, &Device::Cpu, g).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// One step of a random chain over `[b, 6, 4]` tensors; `k` picks the op.
fn step(x: &Tensor, y: &Tensor, k: u64) -> Result<Tensor> {
    match k {
        0 => x.add(y),
        1 => x.mul(&y.tanh()?),
        2 => x.relu()?.sub(y),
        3 => x.exp()?.clamp(0.0, 3.0)?.div(&y.abs()?.add_scalar(1.0)?),
        4 => x.softmax(2)?.mul_scalar(3.0),
        5 => x.transpose(1, 2)?.contiguous()?.transpose(1, 2),
        6 => x.sum(&[2], true)?.broadcast_to(x.shape().clone())?.add(y),
        7 => x.narrow(1, 1, 4)?.pad_like(x),
        8 => x
            .matmul(&y.transpose(1, 2)?)?
            .narrow(2, 0, 4)?
            .reshape(x.shape().clone()),
        9 => x.maximum(y)?.sigmoid(),
        10 => x
            .reshape([x.dims()[0], 24])?
            .log_softmax(1)?
            .reshape(x.shape().clone()),
        _ => x.gt(y)?.where_cond(x, &y.neg()?),
    }
}

trait PadLike {
    fn pad_like(&self, like: &Tensor) -> Result<Tensor>;
}
impl PadLike for Tensor {
    /// `[b, 4, 4]` back to `[b, 6, 4]` with zero rows (cat with a zeros_like slice).
    fn pad_like(&self, like: &Tensor) -> Result<Tensor> {
        let z = like.narrow(1, 0, 2)?.zeros_like()?;
        Tensor::cat(&[self.clone(), z], 1)
    }
}

#[test]
fn random_op_chains_replay_bit_identically_at_any_batch() {
    let mut rng = Generator::new(42);
    for case in 0..40 {
        let ops: Vec<u64> = (0..6).map(|_| rng.next_below(12)).collect();
        let chain = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
            let (mut a, b) = (xs[0].clone(), xs[1].clone());
            for &k in &ops {
                a = step(&a, &b, k)?;
            }
            Ok(vec![a.sum(&[1], false)?, a])
        };
        let (x, y) = (randn(&[3, 6, 4], &mut rng), randn(&[3, 6, 4], &mut rng));
        let g = Capture::new()
            .input("x", &x)
            .input("y", &y)
            .symbolic_batch(true)
            .run(chain)
            .unwrap_or_else(|e| panic!("case {case} {ops:?}: {e}"));
        let mut simple = g.clone();
        simple.simplify().unwrap();
        for b in [3, 1, 5] {
            let (x, y) = (randn(&[b, 6, 4], &mut rng), randn(&[b, 6, 4], &mut rng));
            let eager = chain(&[x.clone(), y.clone()]).unwrap();
            for graph in [&g, &simple] {
                let run = graph.run(&[x.clone(), y.clone()]).unwrap();
                for (e, r) in eager.iter().zip(&run) {
                    assert_eq!(bits(e), bits(r), "case {case} {ops:?} batch {b}\n{graph}");
                }
            }
        }
    }
}

fn small_graph() -> Graph {
    let x = Tensor::ones([2, 3], DType::F32, &Device::Cpu).unwrap();
    Capture::new()
        .input("images", &x)
        .symbolic_batch(true)
        .run(|xs| Ok(vec![xs[0].relu()?]))
        .unwrap()
}

#[test]
fn bad_inputs_are_errors_naming_the_placeholder() {
    let g = small_graph();
    let e = g.run(&[]).unwrap_err().to_string();
    assert!(e.contains("expected 1 inputs (images), got 0"), "{e}");
    let f64x = Tensor::ones([2, 3], DType::F64, &Device::Cpu).unwrap();
    let e = g.run(&[f64x]).unwrap_err().to_string();
    assert!(
        e.contains("input `images` must be f32") || e.contains("`images`"),
        "{e}"
    );
    let wrong = Tensor::ones([2, 4], DType::F32, &Device::Cpu).unwrap();
    let e = g.run(&[wrong]).unwrap_err().to_string();
    assert!(
        e.contains("input `images` must have shape [N, 3], got [2, 4]"),
        "{e}"
    );
    let ok = Tensor::ones([9, 3], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(g.run(&[ok]).unwrap()[0].dims(), &[9, 3]);
}

#[test]
fn fixed_graphs_refuse_other_batch_sizes() {
    let x = Tensor::ones([2, 3], DType::F32, &Device::Cpu).unwrap();
    let g = Capture::new()
        .input("x", &x)
        .run(|xs| Ok(vec![xs[0].exp()?]))
        .unwrap();
    let e = g.run(&[Tensor::ones([3, 3], DType::F32, &Device::Cpu).unwrap()]);
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("must have shape [2, 3]"));
}

#[test]
fn reading_values_during_capture_is_reported() {
    let x = Tensor::from_vec(vec![1f32, -2.0], [2], &Device::Cpu).unwrap();
    let g = Capture::new()
        .input("x", &x)
        .run(|xs| {
            let s = xs[0].sum_all()?.item::<f32>()?;
            Ok(vec![if s > 0.0 { xs[0].exp()? } else { xs[0].neg()? }])
        })
        .unwrap();
    assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    assert!(
        g.warnings[0].contains("`to_vec` read the values"),
        "{}",
        g.warnings[0]
    );
    assert!(g.to_string().contains("note: `to_vec` read"));
}

#[test]
fn random_draws_during_capture_are_reported() {
    // A dropout-like mask drawn inside the closure becomes a constant: a replay would reuse
    // it, so the capture says so (with a fixed batch too, where no second trace shows it).
    let x = Tensor::from_vec(vec![1f32, -2.0, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
    let masked = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let u = Tensor::rand(0.0, 1.0, [2], DType::F32, &Device::Cpu)?;
        Ok(vec![xs[0].mul(&u)?])
    };
    let g = Capture::new().input("x", &x).run(masked).unwrap();
    assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    assert!(
        g.warnings[0].contains(mlfw_core::graph::RANDOM_DRAW),
        "{}",
        g.warnings[0]
    );
    // A generator used outside a capture notes nothing.
    let plain = Capture::new()
        .input("x", &x)
        .run(|xs| Ok(vec![xs[0].exp()?]))
        .unwrap();
    Tensor::rand(0.0, 1.0, [2], DType::F32, &Device::Cpu).unwrap();
    assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
}

#[test]
fn a_refused_warning_ends_a_symbolic_capture_after_one_trace() {
    // A caller that refuses random draws gets its error after the first trace, without the
    // second whole trace at another batch size; without `refuse` both traces run.
    let x = Tensor::from_vec(vec![1f32, -2.0, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
    let calls = std::cell::Cell::new(0);
    let masked = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        calls.set(calls.get() + 1);
        let u = Tensor::rand(0.0, 1.0, [2], DType::F32, &Device::Cpu)?;
        Ok(vec![xs[0].mul(&u)?])
    };
    let e = Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .refuse(&[mlfw_core::graph::RANDOM_DRAW])
        .run(masked)
        .unwrap_err()
        .to_string();
    assert!(e.contains(mlfw_core::graph::RANDOM_DRAW), "{e}");
    assert_eq!(calls.get(), 1, "traced again after a refused warning");
    calls.set(0);
    assert!(Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .run(masked)
        .is_err());
    assert_eq!(calls.get(), 2);
}

#[test]
fn transposed_products_become_contiguous_products() {
    // A linear layer's weight gradient as captured: permute(reshape(xᵀ·g)); the rewrite
    // computes gᵀ·x into [out, in] directly, with the same bits.
    let mut gen = Generator::new(4);
    let x = randn(&[6, 5], &mut gen);
    let g = randn(&[6, 3], &mut gen);
    let graph = Capture::new()
        .input("x", &x)
        .input("g", &g)
        .symbolic_batch(true)
        .run(|xs| {
            let xt = xs[0].unsqueeze(0)?.permute(&[0, 2, 1])?;
            let dw = xt
                .matmul(&xs[1].unsqueeze(0)?)?
                .reshape([5, 3])?
                .permute(&[1, 0])?;
            Ok(vec![dw, xs[0].exp()?])
        })
        .unwrap();
    let mut rewritten = graph.clone();
    assert_eq!(rewritten.transpose_matmul_outputs(), 1);
    assert_eq!(
        rewritten.transpose_matmul_outputs(),
        0,
        "nothing left to rewrite"
    );
    for n in [6, 2] {
        let ins = [x.narrow(0, 0, n).unwrap(), g.narrow(0, 0, n).unwrap()];
        let (a, b) = (graph.run(&ins).unwrap(), rewritten.run(&ins).unwrap());
        assert!(!a[0].is_contiguous() && b[0].is_contiguous());
        assert_eq!(b[0].dims(), &[3, 5]);
        for (p, q) in a.iter().zip(&b) {
            assert_eq!(bits(p), bits(q), "batch {n}");
        }
    }
}

#[test]
fn nested_captures_are_an_error() {
    let x = Tensor::ones([2], DType::F32, &Device::Cpu).unwrap();
    let e = Capture::new()
        .input("x", &x)
        .run(|xs| {
            Capture::new()
                .input("y", &xs[0])
                .run(|ys| Ok(vec![ys[0].clone()]))?;
            Ok(vec![xs[0].clone()])
        })
        .unwrap_err();
    assert!(e.to_string().contains("already running"), "{e}");
}

#[test]
fn ops_that_depend_on_the_batch_size_refuse_a_symbolic_batch() {
    let x = Tensor::ones([2, 3], DType::F32, &Device::Cpu).unwrap();
    let e = Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .run(|xs| {
            let mut y = xs[0].clone();
            for _ in 0..xs[0].dims()[0] {
                y = y.exp()?;
            }
            Ok(vec![y])
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("not the same at batch sizes 2 and 3"),
        "{e}"
    );
}

#[test]
fn scalars_and_constants_from_the_batch_size_refuse_a_symbolic_batch() {
    let x = Tensor::ones([4, 3], DType::F32, &Device::Cpu).unwrap();
    let capture = |f: &dyn Fn(&Tensor) -> mlfw_core::Result<Tensor>| {
        Capture::new()
            .input("x", &x)
            .symbolic_batch(true)
            .run(|xs| Ok(vec![f(&xs[0])?]))
    };
    // A mean written by hand: the 1/N would be baked in at the tracing batch.
    let e = capture(&|x| x.sum(&[0, 1], false)?.mul_scalar(1.0 / x.dims()[0] as f64))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not the same at batch sizes 2 and 3")
            && e.contains("other arguments")
            && e.contains(mlfw_core::graph::SCALARS_DEPEND),
        "{e}"
    );
    let e = capture(&|x| {
        let n = Tensor::full(x.dims()[0] as f64, [1], DType::F32, &Device::Cpu)?;
        x.sum(&[0, 1], false)?.div(&n.reshape([])?)
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("other values") && !e.contains(mlfw_core::graph::SCALARS_DEPEND),
        "{e}"
    );
    // The same scalar at every batch is fine, and the graph runs at other batches.
    let g = capture(&|x| x.sum(&[1], false)?.mul_scalar(0.5)).unwrap();
    let y = Tensor::ones([5, 3], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        g.run(&[y]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![1.5; 5]
    );
}

#[test]
fn in_place_writes_become_state_writes_performed_by_each_run() {
    let dev = Device::Cpu;
    let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], [2, 2], &dev).unwrap();
    let acc = Tensor::zeros([2], DType::F32, &dev).unwrap();
    // A running sum over batches, as batch norm keeps its running mean.
    let step = |xs: &[Tensor]| {
        let s = xs[0].sum(&[0], false)?;
        acc.assign(&acc.add(&s)?)?;
        Ok(vec![s])
    };
    let g = Capture::new()
        .input("x", &x)
        .param("acc", &acc)
        .run(step)
        .unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    assert_eq!(g.writes.len(), 1, "{g}");
    assert!(g.to_string().contains("writes: acc <- add"), "{g}");
    assert_eq!(
        acc.to_vec::<f32>().unwrap(),
        vec![0., 0.],
        "not written during capture"
    );
    g.run(std::slice::from_ref(&x)).unwrap();
    g.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(acc.to_vec::<f32>().unwrap(), vec![8., 12.]);
    let mut plan = mlfw_core::graph::compile(&g).unwrap();
    plan.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(acc.to_vec::<f32>().unwrap(), vec![12., 18.]);
    // A write into a tensor that is not a registered parameter, and a read after a write,
    // are reported.
    let loose = Tensor::zeros([2], DType::F32, &dev).unwrap();
    let g = Capture::new()
        .input("x", &x)
        .run(|xs| {
            loose.assign(&xs[0].sum(&[0], false)?)?;
            Ok(vec![loose.relu()?])
        })
        .unwrap();
    let w = g.warnings.join("\n");
    assert!(
        w.contains("not a registered parameter") && w.contains("read later"),
        "{w}"
    );
    assert!(g.writes.is_empty());
}

fn kinds(g: &Graph) -> Vec<String> {
    g.nodes.iter().map(|n| n.op_name()).collect()
}

#[test]
fn simplify_folds_merges_and_applies_exact_identities_only() {
    let x = Tensor::ones([4], DType::F32, &Device::Cpu).unwrap();
    let c = Tensor::from_vec(vec![1f32, 2., 3., 4.], [4], &Device::Cpu).unwrap();
    let mut g = Capture::new()
        .input("x", &x)
        .run(|xs| {
            let x = &xs[0];
            let one = x.ones_like()?; // folded to a constant, then x·1 → x
            let a = x.mul(&one)?.neg()?.neg()?; // −(−x) → x
            let b = x.exp()?.add(&x.exp()?)?; // CSE: one exp
            let folded = c.exp()?.sum_all()?; // all-constant: folded
            let zero = x.zeros_like()?;
            let keep = x.mul(&zero)?; // x·0 stays (NaN·0 is NaN)
            let r = x.reshape([2, 2])?.reshape([4])?; // reshape∘reshape → one, then identity
            Ok(vec![a, b, folded, keep, r])
        })
        .unwrap();
    let before = g.op_count();
    let st = g.simplify().unwrap();
    assert!(
        st.folded >= 2 && st.identities >= 3 && st.merged >= 1,
        "{st:?}\n{g}"
    );
    let k = kinds(&g);
    assert_eq!(k.iter().filter(|n| *n == "exp").count(), 1, "{g}");
    assert_eq!(k.iter().filter(|n| *n == "neg").count(), 0, "{g}");
    assert_eq!(k.iter().filter(|n| *n == "mul").count(), 1, "x·0 kept\n{g}");
    assert!(g.op_count() < before);
    // The outputs that are just `x` point at the input itself.
    assert!(
        matches!(g.node(g.outputs[0]).kind, NodeKind::Input { .. }),
        "{g}"
    );
    assert!(
        matches!(g.node(g.outputs[4]).kind, NodeKind::Input { .. }),
        "{g}"
    );
    assert!(
        matches!(g.node(g.outputs[2]).kind, NodeKind::Constant(_)),
        "{g}"
    );
    let nan = Tensor::from_vec(vec![f32::NAN, 1., f32::INFINITY, -2.], [4], &Device::Cpu).unwrap();
    let run = g.run(&[nan]).unwrap();
    let kept = run[3].to_vec::<f32>().unwrap();
    assert!(
        kept[0].is_nan() && kept[2].is_nan() && kept[1] == 0.0,
        "{kept:?}"
    );
}

#[test]
fn dead_code_is_removed_at_capture() {
    let x = Tensor::ones([3], DType::F32, &Device::Cpu).unwrap();
    let g = Capture::new()
        .input("x", &x)
        .run(|xs| {
            let _unused = xs[0].exp()?.sin()?;
            Ok(vec![xs[0].cos()?])
        })
        .unwrap();
    assert_eq!(kinds(&g), ["input", "cos"]);
}

#[test]
fn a_symbolic_capture_that_fails_on_random_draws_says_so() {
    // The two traces draw different masks: the error names the draw, not only the constant.
    let x = Tensor::from_vec(vec![1f32, -2.0, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
    let err = Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .run(|xs| {
            let u = Tensor::rand(0.0, 1.0, xs[0].dims(), DType::F32, &Device::Cpu)?;
            Ok(vec![xs[0].mul(&u)?])
        })
        .expect_err("a batch-sized random constant refuses a symbolic batch")
        .to_string();
    assert!(
        err.contains(mlfw_core::graph::BATCH_DEPENDENT)
            && err.contains(mlfw_core::graph::RANDOM_DRAW),
        "{err}"
    );
}
