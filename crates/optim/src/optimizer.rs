//! The [`Optimizer`] trait and [`Optim`], the one implementation every optimizer shares: it
//! keeps parameter groups and per-parameter state, and runs one fused in-place update per
//! parameter (`Tensor::optim_update`) on whatever device holds it. An optimizer is then just
//! a hyper-parameter struct implementing [`Hyper`] (see `sgd.rs`, `adam.rs`, ...).

use mlfw_core::{safetensors, Device, Error, OptimUpdate, Result, Tensor};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// What every optimizer offers.
pub trait Optimizer {
    /// Updates every parameter that has a gradient, in place.
    fn step(&mut self) -> Result<()>;
    /// Clears every parameter's gradient (PyTorch's `set_to_none=True`).
    fn zero_grad(&mut self);
    /// Learning rate of the first group.
    fn lr(&self) -> f64;
    /// Sets the learning rate of every group.
    fn set_lr(&mut self, lr: f64);
    /// Learning rate of each group.
    fn group_lrs(&self) -> Vec<f64>;
    /// Sets group `i`'s learning rate.
    fn set_group_lr(&mut self, i: usize, lr: f64) -> Result<()>;
    /// Momentum (SGD, RMSprop) or β1 (Adam) of the first group, if the optimizer has one.
    fn momentum(&self) -> Option<f64>;
    /// Sets momentum / β1 of every group (used by momentum-cycling schedules).
    fn set_momentum(&mut self, m: f64) -> Result<()>;
    /// Every state buffer as named tensors plus a JSON string of hyper-parameters and steps.
    fn state_dict(&self) -> Result<OptimizerState>;
    /// Restores [`Optimizer::state_dict`] output (same parameter layout), bit for bit.
    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()>;
}

/// An optimizer's saved state: tensors `state.<i>.<buffer>` (i = parameter index across
/// groups, as PyTorch numbers them) and a JSON document of groups and step counts.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    /// Named state buffers.
    pub tensors: Vec<(String, Tensor)>,
    /// `{"optimizer": NAME, "param_groups": [...], "state": {"i": {"step": n}}}`.
    pub json: String,
}

const META_KEY: &str = "mlfw.optimizer";

impl OptimizerState {
    /// Writes a safetensors file (JSON in metadata `mlfw.optimizer`), atomically.
    ///
    /// # Errors
    /// The file cannot be written (the path and the OS error are named).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let meta = HashMap::from([(META_KEY.to_string(), self.json.clone())]);
        safetensors::save(path, &self.tensors, Some(meta))
    }

    /// Reads a file written by [`OptimizerState::save`].
    ///
    /// # Errors
    /// Unreadable or malformed safetensors; no `mlfw.optimizer` metadata.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let f = safetensors::load(path.as_ref(), &Device::Cpu)?;
        let json = f
            .metadata
            .get(META_KEY)
            .cloned()
            .ok_or_else(|| Error::File {
                path: path.as_ref().display().to_string(),
                msg: format!("no `{META_KEY}` metadata: not an optimizer state file"),
            })?;
        Ok(OptimizerState {
            tensors: f.tensors,
            json,
        })
    }
}

/// The hyper-parameters of one optimizer kind: they decide the state buffers and build the
/// fused update for each step.
pub trait Hyper: Clone + Serialize + DeserializeOwned {
    /// Name stored in state dicts (`"SGD"`, `"Adam"`, ...).
    const NAME: &'static str;
    /// Learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
    /// Momentum or β1, if any.
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Sets momentum or β1; false if the optimizer has none.
    fn set_momentum(&mut self, _m: f64) -> bool {
        false
    }
    /// Errors for invalid settings (negative lr, nesterov without momentum, ...).
    fn validate(&self) -> Result<()>;
    /// Names and initial values of the per-parameter state buffers.
    fn buffers(&self) -> Vec<(&'static str, f64)>;
    /// The fused in-place update for a parameter's `step`-th step (counted from 1), when the
    /// optimizer has one in core's [`OptimUpdate`] set (one kernel per parameter: the fast
    /// path of SGD, Adam, AdamW, RMSprop and Adagrad). `None` (the default) means
    /// [`Hyper::apply`] writes the step as tensor expressions instead.
    fn update(&self, _step: u64) -> Option<OptimUpdate> {
        None
    }
    /// Updates parameter `p` (and its state buffers `bufs`, in [`Hyper::buffers`] order) in
    /// place for its `step`-th step. The default runs the fused kernel of [`Hyper::update`]; a
    /// new optimizer overrides this with tensor expressions (see `nadam.rs`) and needs no
    /// change in core or CUDA. It runs without gradient recording.
    ///
    /// Errors: no fused update and no override; a tensor op failing (shape, device).
    fn apply(&self, step: u64, p: &Tensor, grad: &Tensor, bufs: &[Tensor]) -> Result<()> {
        match self.update(step) {
            Some(u) => p.optim_update(grad, bufs, &u),
            None => Err(Error::msg(format!(
                "{}: neither a fused update nor Hyper::apply is implemented",
                Self::NAME
            ))),
        }
    }
}

/// One group of parameters sharing hyper-parameters.
#[derive(Debug, Clone)]
pub struct ParamGroup<H> {
    /// The parameters (shared handles of the model's tensors).
    pub params: Vec<Tensor>,
    /// Their hyper-parameters.
    pub config: H,
}

#[derive(Debug, Clone)]
struct ParamState {
    step: u64,
    bufs: Vec<Tensor>,
}

/// A generic optimizer over hyper-parameters `H` (`Sgd = Optim<SgdConfig>`, ...).
#[derive(Debug, Clone)]
pub struct Optim<H: Hyper> {
    groups: Vec<ParamGroup<H>>,
    state: Vec<Vec<Option<ParamState>>>,
}

impl<H: Hyper> Optim<H> {
    /// One group of `params` with `config`. Parameters must be leaves.
    ///
    /// # Errors
    /// Invalid settings (`Hyper::validate`); a parameter that is not a float leaf or
    /// appears twice.
    pub fn new(params: Vec<Tensor>, config: H) -> Result<Self> {
        let mut o = Optim {
            groups: vec![],
            state: vec![],
        };
        o.add_param_group(params, config)?;
        Ok(o)
    }

    /// Adds a group with its own hyper-parameters.
    ///
    /// # Errors
    /// As [`Optim::new`], also for a parameter already in another group.
    pub fn add_param_group(&mut self, params: Vec<Tensor>, config: H) -> Result<()> {
        config.validate()?;
        for (i, p) in params.iter().enumerate() {
            if !p.is_leaf() || !p.dtype().is_float() {
                return Err(Error::msg(format!(
                    "{}: parameter {i} of group {} must be a float leaf tensor",
                    H::NAME,
                    self.groups.len()
                )));
            }
            let seen = self.groups.iter().flat_map(|g| &g.params);
            if seen.chain(&params[..i]).any(|q| q.id() == p.id()) {
                return Err(Error::msg(format!(
                    "{}: parameter {i} appears in more than one place",
                    H::NAME
                )));
            }
        }
        self.state.push(vec![None; params.len()]);
        self.groups.push(ParamGroup { params, config });
        Ok(())
    }

    /// The groups.
    pub fn groups(&self) -> &[ParamGroup<H>] {
        &self.groups
    }

    /// Mutable hyper-parameters of group `i`.
    pub fn config_mut(&mut self, i: usize) -> Option<&mut H> {
        self.groups.get_mut(i).map(|g| &mut g.config)
    }

    /// Steps taken by parameter `j` of group `i`.
    pub fn step_count(&self, i: usize, j: usize) -> u64 {
        self.state
            .get(i)
            .and_then(|s| s.get(j))
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.step)
    }

    fn fresh_bufs(config: &H, p: &Tensor) -> Result<Vec<Tensor>> {
        config
            .buffers()
            .iter()
            .map(|(_, v)| Tensor::full(*v, p.shape().clone(), p.dtype(), &p.device()))
            .collect()
    }
}

impl<H: Hyper> Optimizer for Optim<H> {
    fn step(&mut self) -> Result<()> {
        for (gi, g) in self.groups.iter().enumerate() {
            for (pi, p) in g.params.iter().enumerate() {
                let Some(grad) = p.grad() else { continue };
                let slot = &mut self.state[gi][pi];
                if slot.is_none() {
                    *slot = Some(ParamState {
                        step: 0,
                        bufs: Self::fresh_bufs(&g.config, p)?,
                    });
                }
                let st = slot.as_mut().expect("state was just created");
                if st.bufs.len() != g.config.buffers().len() {
                    return Err(Error::msg(format!(
                        "{}: the hyper-parameters changed which state buffers parameter {pi} needs",
                        H::NAME
                    )));
                }
                st.step += 1;
                let _no_grad = mlfw_autograd::no_grad();
                g.config.apply(st.step, p, &grad, &st.bufs).map_err(|e| {
                    e.context(format!("{} step, group {gi} parameter {pi}", H::NAME))
                })?;
            }
        }
        Ok(())
    }

    fn zero_grad(&mut self) {
        self.groups
            .iter()
            .flat_map(|g| &g.params)
            .for_each(|p| p.zero_grad());
    }

    fn lr(&self) -> f64 {
        self.groups.first().map_or(0.0, |g| g.config.lr())
    }

    fn set_lr(&mut self, lr: f64) {
        self.groups.iter_mut().for_each(|g| g.config.set_lr(lr));
    }

    fn group_lrs(&self) -> Vec<f64> {
        self.groups.iter().map(|g| g.config.lr()).collect()
    }

    fn set_group_lr(&mut self, i: usize, lr: f64) -> Result<()> {
        let n = self.groups.len();
        let g = self
            .groups
            .get_mut(i)
            .ok_or_else(|| Error::msg(format!("no parameter group {i} (have {n})")))?;
        g.config.set_lr(lr);
        Ok(())
    }

    fn momentum(&self) -> Option<f64> {
        self.groups.first().and_then(|g| g.config.momentum())
    }

    fn set_momentum(&mut self, m: f64) -> Result<()> {
        for g in &mut self.groups {
            if !g.config.set_momentum(m) {
                return Err(Error::msg(format!("{} has no momentum to set", H::NAME)));
            }
        }
        Ok(())
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let (mut tensors, mut groups, mut steps) = (vec![], vec![], serde_json::Map::new());
        let mut idx = 0usize;
        for (g, sts) in self.groups.iter().zip(&self.state) {
            let mut gj = serde_json::to_value(&g.config)
                .map_err(|e| Error::msg(format!("{}: cannot serialise: {e}", H::NAME)))?;
            let ids: Vec<usize> = (idx..idx + g.params.len()).collect();
            gj["params"] = json!(ids);
            groups.push(gj);
            for st in sts {
                if let Some(st) = st {
                    steps.insert(idx.to_string(), json!({ "step": st.step }));
                    for ((name, _), t) in g.config.buffers().iter().zip(&st.bufs) {
                        tensors.push((format!("state.{idx}.{name}"), t.clone()));
                    }
                }
                idx += 1;
            }
        }
        let doc = json!({ "optimizer": H::NAME, "param_groups": groups, "state": steps });
        Ok(OptimizerState {
            tensors,
            json: doc.to_string(),
        })
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        let bad = |m: String| Error::msg(format!("{} load_state_dict: {m}", H::NAME));
        let doc: Value =
            serde_json::from_str(&s.json).map_err(|e| bad(format!("bad JSON: {e}")))?;
        if doc["optimizer"].as_str() != Some(H::NAME) {
            return Err(bad(format!("state is for optimizer {}", doc["optimizer"])));
        }
        let groups = doc["param_groups"]
            .as_array()
            .ok_or_else(|| bad("no param_groups".into()))?;
        if groups.len() != self.groups.len() {
            return Err(bad(format!(
                "{} groups saved, {} here",
                groups.len(),
                self.groups.len()
            )));
        }
        let mut configs = Vec::with_capacity(groups.len());
        for (i, (gj, g)) in groups.iter().zip(&self.groups).enumerate() {
            let n = gj["params"].as_array().map_or(0, |a| a.len());
            if n != g.params.len() {
                return Err(bad(format!(
                    "group {i} saved {n} parameters, has {} here",
                    g.params.len()
                )));
            }
            let c: H =
                serde_json::from_value(gj.clone()).map_err(|e| bad(format!("group {i}: {e}")))?;
            c.validate()?;
            configs.push(c);
        }
        let total: usize = self.groups.iter().map(|g| g.params.len()).sum();
        if let Some(states) = doc["state"].as_object() {
            if let Some(k) = states
                .keys()
                .find(|k| k.parse::<usize>().map_or(true, |i| i >= total))
            {
                return Err(bad(format!(
                    "state `{k}` names no parameter (there are {total})"
                )));
            }
        } else if !doc["state"].is_null() {
            return Err(bad("`state` is not an object".into()));
        }
        let map: HashMap<&str, &Tensor> = s.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut used = std::collections::HashSet::new();
        let mut new_state = Vec::with_capacity(self.groups.len());
        let mut idx = 0usize;
        for (g, c) in self.groups.iter().zip(&configs) {
            let mut sts = Vec::with_capacity(g.params.len());
            for p in &g.params {
                let st = match doc["state"].get(idx.to_string()) {
                    None => None,
                    Some(sj) => {
                        let step = sj["step"]
                            .as_u64()
                            .filter(|&n| n > 0)
                            .ok_or_else(|| bad(format!("state {idx}: no step count >= 1")))?;
                        let mut bufs = Vec::new();
                        for ((name, _), b) in c.buffers().iter().zip(Self::fresh_bufs(c, p)?) {
                            let key = format!("state.{idx}.{name}");
                            let t = map
                                .get(key.as_str())
                                .ok_or_else(|| bad(format!("missing tensor `{key}`")))?;
                            if t.shape() != p.shape() {
                                return Err(bad(format!(
                                    "`{key}` has shape {}, parameter {}",
                                    t.shape(),
                                    p.shape()
                                )));
                            }
                            b.assign(&t.to_dtype(p.dtype())?)?;
                            bufs.push(b);
                            used.insert(key);
                        }
                        Some(ParamState { step, bufs })
                    }
                };
                sts.push(st);
                idx += 1;
            }
            new_state.push(sts);
        }
        let extra: Vec<&str> = s
            .tensors
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !used.contains(*n))
            .collect();
        if !extra.is_empty() {
            return Err(bad(format!(
                "unexpected state tensor(s) {extra:?}: no parameter's state needs them"
            )));
        }
        for (g, c) in self.groups.iter_mut().zip(configs) {
            g.config = c;
        }
        self.state = new_state;
        Ok(())
    }
}

/// Errors unless `v` is finite and ≥ 0, naming the setting.
pub(crate) fn non_negative(name: &str, what: &str, v: f64) -> Result<()> {
    if !(v >= 0.0 && v.is_finite()) {
        return Err(Error::msg(format!(
            "{name}: invalid {what} {v} (must be >= 0)"
        )));
    }
    Ok(())
}
