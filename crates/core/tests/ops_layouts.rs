//! Elementwise, comparison, reduction and view ops on contiguous, transposed, narrowed,
//! broadcast (stride 0) and zero-size inputs, checked against plain nested loops; and the
//! errors bad input must give.

use mlfw_core::{CmpOp, DType, Device, Error, Tensor};

const D: Device = Device::Cpu;

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &D).unwrap()
}

fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(
        &(0..n)
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect::<Vec<_>>(),
        shape,
    )
}

/// The same values as `x` laid out three ways: contiguous, transposed view, narrowed view.
fn layouts(x: &Tensor) -> Vec<Tensor> {
    let (r, c) = (x.dims()[0], x.dims()[1]);
    let tr = x.t().unwrap().contiguous().unwrap().t().unwrap();
    assert!(!tr.is_contiguous());
    let wide = Tensor::cat(&[x.clone(), x.zeros_like().unwrap()], 1)
        .unwrap()
        .narrow(1, 0, c)
        .unwrap();
    assert!(!wide.is_contiguous() && wide.dims() == [r, c]);
    vec![x.clone(), tr, wide]
}

#[test]
fn unary_ops_on_every_layout() {
    let x = seq(&[4, 5]);
    let want = |f: fn(f32) -> f32| {
        x.to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f)
            .collect::<Vec<_>>()
    };
    for v in layouts(&x) {
        let close = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .all(|(p, q)| (p - q).abs() <= 1e-5 * (1.0 + q.abs()))
        };
        assert!(close(v.exp().unwrap().to_vec().unwrap(), want(f32::exp)));
        assert!(close(v.tanh().unwrap().to_vec().unwrap(), want(f32::tanh)));
        assert!(close(
            v.relu().unwrap().to_vec().unwrap(),
            want(|a| a.max(0.0))
        ));
        assert!(close(
            v.abs().unwrap().sqrt().unwrap().to_vec().unwrap(),
            want(|a| a.abs().sqrt())
        ));
        assert!(close(
            v.clamp(-1.0, 1.0).unwrap().to_vec().unwrap(),
            want(|a| a.clamp(-1.0, 1.0))
        ));
        assert!(close(
            v.leaky_relu(0.1).unwrap().to_vec().unwrap(),
            want(|a| if a > 0.0 { a } else { 0.1 * a })
        ));
        assert!(close(
            v.sigmoid().unwrap().to_vec().unwrap(),
            want(|a| 1.0 / (1.0 + (-a).exp()))
        ));
        assert!(close(
            v.sign().unwrap().to_vec().unwrap(),
            want(|a| if a > 0.0 {
                1.0
            } else if a < 0.0 {
                -1.0
            } else {
                0.0
            })
        ));
    }
}

#[test]
fn binary_ops_broadcast_over_every_layout() {
    let x = seq(&[4, 5]);
    let row = t(&[1., -2., 3., -4., 5.], &[5]);
    let col = t(&[0.5, 1.5, -2.5, 3.5], &[4, 1]);
    let xs = x.to_vec::<f32>().unwrap();
    for v in layouts(&x) {
        let s = v.add(&row).unwrap().to_vec::<f32>().unwrap();
        let m = v.mul(&col).unwrap().to_vec::<f32>().unwrap();
        let mx = v.maximum(&row).unwrap().to_vec::<f32>().unwrap();
        let d = col
            .div(&v.add_scalar(10.0).unwrap())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        for i in 0..4 {
            for j in 0..5 {
                let k = i * 5 + j;
                let r = [1., -2., 3., -4., 5.][j];
                let c = [0.5, 1.5, -2.5, 3.5][i];
                assert_eq!(s[k], xs[k] + r);
                assert_eq!(m[k], xs[k] * c);
                assert_eq!(mx[k], xs[k].max(r));
                assert!((d[k] - c / (xs[k] + 10.0)).abs() < 1e-6);
            }
        }
    }
    // A stride-0 operand made by expand, and a scalar.
    let e = col.expand([4, 5]).unwrap();
    assert_eq!(e.strides()[1], 0);
    assert_eq!(
        x.sub(&e).unwrap().to_vec::<f32>().unwrap(),
        x.sub(&col).unwrap().to_vec::<f32>().unwrap()
    );
    let sc = Tensor::scalar(2f32, &D).unwrap();
    assert_eq!(
        x.mul(&sc).unwrap().to_vec::<f32>().unwrap(),
        xs.iter().map(|a| a * 2.0).collect::<Vec<_>>()
    );
}

#[test]
fn comparisons_and_where() {
    let x = t(&[1., 5., 3., 2.], &[2, 2]);
    let y = t(&[2., 2.], &[2]);
    let m = x.gt(&y).unwrap();
    assert_eq!(m.dtype(), DType::Bool);
    assert_eq!(m.to_vec::<bool>().unwrap(), vec![false, true, true, false]);
    assert_eq!(
        x.cmp_scalar(2.0, CmpOp::Le)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false, false, true]
    );
    let w = m.where_cond(&x, &y).unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![2., 5., 3., 2.]);
    assert_eq!(
        x.t().unwrap().eq(&x).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, false, true]
    );
}

#[test]
fn reductions_over_dims_of_every_layout() {
    let x = seq(&[4, 5]);
    let xs = x.to_vec::<f32>().unwrap();
    for v in layouts(&x) {
        let s0 = v.sum(&[0], false).unwrap().to_vec::<f32>().unwrap();
        let s1 = v.sum(&[1], true).unwrap();
        assert_eq!(s1.dims(), &[4, 1]);
        let mx = v.max(&[1], false).unwrap().to_vec::<f32>().unwrap();
        let am = v.argmin(0, false).unwrap().to_vec::<i64>().unwrap();
        for j in 0..5 {
            let col: Vec<f32> = (0..4).map(|i| xs[i * 5 + j]).collect();
            assert!((s0[j] - col.iter().sum::<f32>()).abs() < 1e-5);
            let best = (0..4)
                .min_by(|&a, &b| col[a].partial_cmp(&col[b]).unwrap())
                .unwrap();
            assert_eq!(am[j], best as i64);
        }
        for i in 0..4 {
            let row = &xs[i * 5..i * 5 + 5];
            assert_eq!(mx[i], row.iter().cloned().fold(f32::MIN, f32::max));
        }
        let var = v.var(&[1], true, false).unwrap().to_vec::<f32>().unwrap();
        let row = &xs[..5];
        let mean = row.iter().sum::<f32>() / 5.0;
        assert!((var[0] - row.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / 4.0).abs() < 1e-5);
        let sm = v
            .softmax(0)
            .unwrap()
            .sum(&[0], false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(sm.iter().all(|s| (s - 1.0).abs() < 1e-6));
        let lse = v.logsumexp(&[1], false).unwrap().to_vec::<f32>().unwrap();
        assert!((lse[0] - row.iter().map(|a| a.exp()).sum::<f32>().ln()).abs() < 1e-5);
    }
}

#[test]
fn zero_size_inputs() {
    let z = Tensor::zeros([0, 3], DType::F32, &D).unwrap();
    assert_eq!(z.exp().unwrap().dims(), &[0, 3]);
    assert_eq!(z.add(&t(&[1., 2., 3.], &[3])).unwrap().elem_count(), 0);
    assert_eq!(
        z.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
        vec![0., 0., 0.]
    );
    assert_eq!(z.sum(&[1], false).unwrap().dims(), &[0]);
    assert!(z.max(&[0], false).is_err());
    assert_eq!(z.t().unwrap().contiguous().unwrap().dims(), &[3, 0]);
    assert_eq!(
        Tensor::cat(&[z.clone(), seq(&[2, 3])], 0).unwrap().dims(),
        &[2, 3]
    );
    assert_eq!(z.matmul(&seq(&[3, 2])).unwrap().dims(), &[0, 2]);
    assert_eq!(
        seq(&[2, 0])
            .matmul(&Tensor::zeros([0, 4], DType::F32, &D).unwrap())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.; 8]
    );
}

#[test]
fn matmul_reads_transposed_and_broadcast_inputs_in_place() {
    let a = seq(&[3, 4]);
    let b = seq(&[5, 4]);
    let want = a
        .matmul(&b.t().unwrap().contiguous().unwrap())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let got = a.matmul(&b.t().unwrap()).unwrap().to_vec::<f32>().unwrap();
    let close = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .all(|(p, q)| (p - q).abs() <= 1e-5 * (1.0 + q.abs()))
    };
    assert!(close(&got, &want));
    let batch = a.unsqueeze(0).unwrap().expand([2, 3, 4]).unwrap();
    let out = batch.matmul(&b.t().unwrap()).unwrap();
    assert_eq!(out.dims(), &[2, 3, 5]);
    assert!(close(
        &out.narrow(0, 1, 1).unwrap().to_vec::<f32>().unwrap(),
        &want
    ));
}

#[test]
fn views_share_storage() {
    let x = seq(&[2, 3, 4]);
    for v in [
        x.permute(&[2, 0, 1]).unwrap(),
        x.narrow(2, 1, 2).unwrap(),
        x.select(1, 2).unwrap(),
        x.unsqueeze(0).unwrap(),
        x.flatten(0, 1).unwrap(),
        x.chunk(2, 2).unwrap()[1].clone(),
        x.reshape([6, 4]).unwrap(),
    ] {
        assert!(v.same_storage(&x));
    }
    // A transposed tensor cannot be viewed flat: reshape copies, and the values follow.
    let flat = x.transpose(0, 2).unwrap().reshape([24]).unwrap();
    assert!(!flat.same_storage(&x));
    assert_eq!(
        flat.to_vec::<f32>().unwrap()[1],
        x.to_vec::<f32>().unwrap()[12]
    );
}

#[test]
fn bad_input_gives_errors_naming_the_problem() {
    let a = seq(&[2, 3]);
    let msg = |e: Error| e.to_string();
    assert!(msg(a.add(&seq(&[4])).unwrap_err()).contains("[2, 3]"));
    assert!(msg(a.matmul(&seq(&[2, 3])).unwrap_err()).contains("matmul"));
    assert!(msg(a.sum(&[2], false).unwrap_err()).contains("out of range"));
    assert!(msg(a.transpose(0, -3).unwrap_err()).contains("dimension -3"));
    assert!(a.narrow(1, 2, 5).is_err());
    assert!(a.select(0, 2).is_err());
    assert!(a.reshape([4, 2]).is_err());
    assert!(a.permute(&[0, 0]).is_err());
    let i = Tensor::from_vec(vec![1i64, 2], [2], &D).unwrap();
    // Float dtypes promote (f32 + f64 is f64, as in PyTorch); integers and floats do not mix.
    assert_eq!(
        a.add(&i.to_dtype(DType::F64).unwrap().reshape([2, 1]).unwrap())
            .unwrap()
            .dtype(),
        DType::F64
    );
    assert!(msg(a.add(&i.reshape([2, 1]).unwrap()).unwrap_err()).contains("dtype"));
    assert!(i.exp().is_err());
    assert!(msg(a
        .index_select(&Tensor::from_vec(vec![0i64, 5], [2], &D).unwrap(), 0)
        .unwrap_err())
    .contains("5"));
    assert!(a.to_vec::<f64>().is_err());
    assert!(Tensor::from_vec(vec![1f32; 5], [2, 3], &D).is_err());
    assert!(a
        .conv2d(&seq(&[1, 1, 3, 3]), None, Default::default())
        .is_err());
    assert!(msg(Device::parse("tpu").unwrap_err()).contains("tpu"));
    assert!(Tensor::zeros([2], DType::F32, &Device::Cuda(0)).is_err());
}
