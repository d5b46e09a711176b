//! Building a [`Plan`]: concrete shapes, fused groups, the step order, when each value dies,
//! and which planned buffer each materialized fused value and kernel step's result lives in.

use super::eval_into;
use super::fuse::{self, Group};
use super::instr::{Instr, MAX_REGS};
use super::kernel::FusedKernel;
use super::pool_relu::{self, PoolStep};
use super::{Plan, PlanStats, Step};
use crate::graph::{Graph, NodeKind};
use crate::op::Op;
use crate::{DType, Device, Error, Result, Shape};
use std::time::Instant;

/// Groups of fewer ops run op by op with the eager kernels (see BENCHMARKS.md: on LeNet-5
/// the fused loop does not beat two eager passes; `MLFW_FUSE_MIN` overrides it).
const MIN_FUSED_OPS: usize = 2;

/// Whether kernel steps' results go to planned buffers: on unless `MLFW_PLAN_KERNELS=0` (read
/// at compile time; for A/B runs of the memory plan's kernel half).
fn plan_kernels() -> bool {
    std::env::var_os("MLFW_PLAN_KERNELS").is_none_or(|v| v != "0")
}

/// Ops whose result may share storage with their first input (views, or a no-op copy).
fn may_alias(op: &Op<crate::graph::ValueId>) -> bool {
    matches!(
        op,
        Op::Reshape(_)
            | Op::Permute(..)
            | Op::Narrow { .. }
            | Op::Expand(_)
            | Op::Copy(_)
            | Op::ToDType(_)
            | Op::ToDevice(_)
    )
}

/// Compiles `g` for batch size `n` (ignored when the graph has no symbolic batch).
pub(super) fn build(g: &Graph, n: usize) -> Result<Plan> {
    let t0 = Instant::now();
    let count = g.nodes.len();
    for node in &g.nodes {
        if let NodeKind::Op(Op::Custom(c, _)) = &node.kind {
            return Err(Error::msg(format!(
                "compile: custom op `{}` cannot be compiled (node `{}`)",
                c.name(),
                node.name
            )));
        }
    }
    let shapes: Vec<Vec<usize>> = g.nodes.iter().map(|nd| nd.shape_for(n)).collect();
    let mut consumers: Vec<Vec<usize>> = vec![vec![]; count];
    for (k, node) in g.nodes.iter().enumerate() {
        for v in node.inputs() {
            if !consumers[v.0].contains(&k) {
                consumers[v.0].push(k);
            }
        }
    }
    let mut is_output = vec![false; count];
    // State writes' values live to the end of the run, like outputs.
    for o in g.outputs.iter().chain(g.writes.iter().map(|(_, s)| s)) {
        is_output[o.0] = true;
    }
    let all_cpu = g.nodes.iter().all(|nd| nd.device == Device::Cpu);
    // Other devices fuse when their backend runs fused groups (`device_run.rs`).
    let fuse_here = g.nodes.first().is_some_and(|first| {
        g.nodes.iter().all(|nd| nd.device == first.device)
            && super::device_run::fuses_on(first.device)
    });
    let min_ops: usize = std::env::var("MLFW_FUSE_MIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MIN_FUSED_OPS);
    // Fused pooling chains first (their members leave the elementwise fusion).
    let pools: Vec<PoolStep> = if all_cpu && pool_relu::enabled() {
        pool_relu::find(g, &shapes, &consumers, &is_output)
    } else {
        vec![]
    };
    let mut pool_of: Vec<Option<usize>> = vec![None; count];
    for (pi, ps) in pools.iter().enumerate() {
        for &m in &ps.members {
            pool_of[m] = Some(pi);
        }
    }
    let taken: Vec<bool> = pool_of.iter().map(Option::is_some).collect();
    let groups: Vec<Group> = if fuse_here {
        let mut gs = fuse::group(g, &shapes, &consumers, &is_output, &taken);
        gs.retain(|gr| gr.members.len() >= min_ops);
        gs
    } else {
        vec![]
    };
    let mut group_of: Vec<Option<usize>> = vec![None; count];
    for (gi, gr) in groups.iter().enumerate() {
        for &m in &gr.members {
            group_of[m] = Some(gi);
        }
    }

    // Step order, and the step at which each node's value appears.
    let mut steps: Vec<Step> = Vec::new();
    let mut time: Vec<usize> = vec![0; count];
    // Per step: values it reads that are not graph inputs of its members.
    let mut extra_reads: Vec<(usize, usize)> = Vec::new(); // (value, step)
    for k in 0..count {
        if let Some(pi) = pool_of[k] {
            let ps = &pools[pi];
            if ps.members.last() == Some(&k) {
                let s = steps.len();
                for &m in ps.members.iter().chain(&ps.stores) {
                    time[m] = s;
                }
                extra_reads.extend(ps.loads.iter().map(|&v| (v, s)));
                steps.push(Step::Pool(ps.clone()));
            }
            continue;
        }
        match (&g.nodes[k].kind, group_of[k]) {
            (NodeKind::Op(_), Some(gi)) if groups[gi].last() == k => {
                let s = steps.len();
                for &m in &groups[gi].members {
                    time[m] = s;
                }
                steps.push(kernel_step(g, &groups[gi], &shapes[k])?);
            }
            (NodeKind::Op(_), Some(_)) => {}
            (NodeKind::Op(op), None) if op.secondary().is_some() => {
                time[k] = steps.len();
                if let Some(second) = op.secondary() {
                    time[second.0] = steps.len();
                }
                steps.push(Step::Eval(k));
            }
            (NodeKind::Op(_), None) => {
                time[k] = steps.len();
                steps.push(Step::Eval(k));
            }
            _ => {}
        }
    }

    // The last step reading each value, extended over the views that may share its storage.
    let mut last = vec![None::<usize>; count];
    for k in 0..count {
        for &c in &consumers[k] {
            let t = time[c];
            last[k] = Some(last[k].map_or(t, |l: usize| l.max(t)));
        }
    }
    for &(v, t) in &extra_reads {
        last[v] = Some(last[v].map_or(t, |l: usize| l.max(t)));
    }
    let mut root: Vec<usize> = (0..count).collect();
    for (k, node) in g.nodes.iter().enumerate() {
        if let NodeKind::Op(op) = &node.kind {
            if may_alias(op) {
                root[k] = root[op.inputs()[0].0];
            }
        }
    }
    const FOREVER: usize = usize::MAX;
    let mut end: Vec<usize> = (0..count).map(|k| last[k].unwrap_or(time[k])).collect();
    for k in 0..count {
        let e = if is_output[k] { FOREVER } else { end[k] };
        let r = root[k];
        end[r] = end[r].max(e);
    }
    for k in 0..count {
        if is_output[k] {
            end[k] = FOREVER;
        }
    }
    // Values the caller receives: the graph's outputs and the values they view.
    let mut returned = vec![false; count];
    for o in &g.outputs {
        returned[o.0] = true;
        returned[root[o.0]] = true;
    }
    let mut drops: Vec<Vec<usize>> = vec![vec![]; steps.len()];
    for (k, node) in g.nodes.iter().enumerate() {
        let own = if is_output[k] {
            FOREVER
        } else {
            last[k].unwrap_or(time[k])
        };
        let keep = matches!(node.kind, NodeKind::Param(_) | NodeKind::Constant(_));
        if !keep && own != FOREVER && own < steps.len() {
            drops[own].push(k);
        }
    }

    // Planned buffers for materialized fused values and for the results of kernel steps
    // that write into a given buffer (`eval_into.rs`); graph outputs get fresh memory, so a
    // caller may keep them.
    let kernels_planned = all_cpu && plan_kernels();
    let mut node_buf: Vec<Option<usize>> = vec![None; count];
    let mut buffers: Vec<(DType, usize)> = Vec::new();
    let mut busy: Vec<(usize, usize)> = Vec::new(); // (buffer, end step)
    let mut free: Vec<usize> = Vec::new();
    for (s, step) in steps.iter().enumerate() {
        let eval_stores;
        let stores: &[usize] = match step {
            Step::Fused { stores, .. } => stores,
            Step::Pool(ps) => &ps.stores,
            Step::Eval(k) if kernels_planned && eval_into::writes_into(&g.nodes[*k]) => {
                eval_stores = eval_into::planned_values(&g.nodes[*k], *k);
                &eval_stores
            }
            Step::Eval(_) => continue,
        };
        busy.retain(|&(b, e)| {
            if e < s {
                free.push(b);
                false
            } else {
                true
            }
        });
        for &m in stores {
            // A value the caller receives (itself or through a view) gets memory of its own:
            // the next run must not overwrite what an earlier one returned. State writes are
            // copied into their parameters after the last step (`Graph::perform_writes`), so
            // on the CPU their values live in planned buffers kept to the end of the run.
            if returned[root[m]] || (!all_cpu && end[root[m]] == FOREVER) {
                continue;
            }
            let need = shapes[m].iter().product::<usize>();
            let b = pick(&mut free, &mut buffers, g.nodes[m].dtype, need);
            node_buf[m] = Some(b);
            busy.push((b, end[root[m]]));
        }
    }

    let stats = PlanStats {
        nodes: g.op_count(),
        steps: steps.len(),
        fused_groups: groups.iter().filter(|gr| gr.members.len() > 1).count(),
        fused_nodes: groups
            .iter()
            .filter(|gr| gr.members.len() > 1)
            .map(|gr| gr.members.len())
            .sum(),
        buffers: buffers.len(),
        buffer_bytes: buffers.iter().map(|(d, e)| d.size_in_bytes() * e).sum(),
        compile_ms: 0.0,
    };
    let input_shapes = g.inputs.iter().map(|i| shapes[i.0].clone()).collect();
    let mut plan = Plan {
        graph: g.clone(),
        input_shapes,
        shapes: shapes.into_iter().map(Shape::new).collect(),
        steps,
        drops,
        buffers,
        node_buf,
        handles: vec![None; count],
        slots: vec![None; count],
        allocated: false,
        planned: std::env::var_os("MLFW_PLAN_BUFFERS").is_none_or(|v| v != "0"),
        stats,
        timings: None,
        replay: Default::default(),
    };
    plan.stats.compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(plan)
}

/// Takes, for a value of `need` elements of `dtype`, the free buffer of that dtype that
/// fits best: the smallest that holds it, else the largest (grown to hold it: sizes are
/// final only when the plan allocates); a new buffer when none of that dtype is free.
fn pick(
    free: &mut Vec<usize>,
    buffers: &mut Vec<(DType, usize)>,
    dtype: DType,
    need: usize,
) -> usize {
    let same = || (0..free.len()).filter(|&i| buffers[free[i]].0 == dtype);
    let size = |i: &usize| buffers[free[*i]].1;
    let fit = same().filter(|i| size(i) >= need).min_by_key(size);
    match fit.or_else(|| same().max_by_key(size)) {
        Some(i) => {
            let b = free.swap_remove(i);
            buffers[b].1 = buffers[b].1.max(need);
            b
        }
        None => {
            buffers.push((dtype, need));
            buffers.len() - 1
        }
    }
}

/// The fused kernel of group `gr` (element count from `shape`).
fn kernel_step(g: &Graph, gr: &Group, shape: &[usize]) -> Result<Step> {
    let nl = gr.loads.len();
    let reg = |v: usize| -> usize {
        match gr.members.iter().position(|&m| m == v) {
            Some(i) => nl + i,
            None => gr.loads.iter().position(|&l| l == v).expect("a load"),
        }
    };
    if nl + gr.members.len() > MAX_REGS {
        return Err(Error::msg(
            "compile: a fused group needs too many registers",
        ));
    }
    let mut instrs = Vec::with_capacity(gr.members.len());
    for &m in &gr.members {
        let d = reg(m);
        let NodeKind::Op(op) = &g.nodes[m].kind else {
            return Err(Error::msg("compile: a fused member is not an op"));
        };
        instrs.push(match op {
            Op::Unary(a, u) => Instr::Unary(d, reg(a.0), *u),
            Op::Binary(a, b, o) => Instr::Binary(d, reg(a.0), reg(b.0), *o),
            Op::Cmp(a, b, o) => Instr::Cmp(d, reg(a.0), reg(b.0), *o),
            Op::Where(c, t, f) => Instr::Where(d, reg(c.0), reg(t.0), reg(f.0)),
            _ => return Err(Error::msg("compile: a fused member is not elementwise")),
        });
    }
    Ok(Step::Fused {
        kernel: FusedKernel {
            len: shape.iter().product(),
            shape: shape.to_vec(),
            regs: nl + gr.members.len(),
            instrs,
            stores: gr.materialized.iter().map(|&m| reg(m)).collect(),
            store_bool: gr
                .materialized
                .iter()
                .map(|&m| g.nodes[m].dtype == DType::Bool)
                .collect(),
        },
        loads: gr.loads.clone(),
        stores: gr.materialized.clone(),
    })
}
