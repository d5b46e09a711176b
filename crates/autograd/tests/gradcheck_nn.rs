//! Gradchecks of convolution and pooling.

mod common;
use common::{check, leaf};
use mlfw_core::{Conv2dParams, Pool2dParams};

#[test]
fn conv2d_all_options() {
    let cases = [
        (
            "basic",
            Conv2dParams {
                padding: (1, 1),
                ..Default::default()
            },
            [1usize, 2, 5, 5],
            [3usize, 2, 3, 3],
        ),
        (
            "stride+dilation",
            Conv2dParams {
                stride: (2, 1),
                dilation: (2, 2),
                ..Default::default()
            },
            [2, 2, 7, 6],
            [2, 2, 2, 2],
        ),
        (
            "groups",
            Conv2dParams {
                groups: 2,
                padding: (0, 1),
                ..Default::default()
            },
            [1, 4, 4, 4],
            [4, 2, 3, 2],
        ),
    ];
    for (i, (name, p, xs, ws)) in cases.into_iter().enumerate() {
        let seed = 10 * i as u64;
        check(
            name,
            |x| x[0].conv2d(&x[1], Some(&x[2]), p),
            &[
                leaf(&xs, seed),
                leaf(&ws, seed + 1),
                leaf(&[ws[0]], seed + 2),
            ],
        );
    }
}

#[test]
fn pooling() {
    let x = leaf(&[2, 2, 6, 5], 40);
    check(
        "max_pool2d",
        |x| x[0].max_pool2d(Pool2dParams::new(2)),
        std::slice::from_ref(&x),
    );
    let p = Pool2dParams {
        kernel: (3, 3),
        stride: (2, 2),
        padding: (1, 1),
        ..Pool2dParams::new(3)
    };
    check(
        "max_pool2d k3s2p1",
        |x| x[0].max_pool2d(p),
        std::slice::from_ref(&x),
    );
    let pc = Pool2dParams {
        ceil_mode: true,
        ..Pool2dParams::new(2)
    };
    check(
        "max_pool2d ceil",
        |x| x[0].max_pool2d(pc),
        std::slice::from_ref(&x),
    );
    check(
        "avg_pool2d",
        |x| x[0].avg_pool2d(Pool2dParams::new(2)),
        std::slice::from_ref(&x),
    );
    check(
        "avg_pool2d k3s2p1",
        |x| x[0].avg_pool2d(p),
        std::slice::from_ref(&x),
    );
    check(
        "adaptive_avg_pool2d",
        |x| x[0].adaptive_avg_pool2d((4, 3)),
        std::slice::from_ref(&x),
    );
    check(
        "adaptive_avg_pool2d 1",
        |x| x[0].adaptive_avg_pool2d((1, 1)),
        &[x],
    );
}
