//! Isolation forest (Liu, Ting, Zhou 2008) for unsupervised anomaly scoring.
//!
//! Each tree is grown on a random subsample (without replacement) of
//! `ψ = min(sample_size, n)` rows by repeatedly choosing a random feature that
//! is not constant in the node and a split value uniform between that
//! feature's minimum and maximum, until a node holds one row or the height
//! limit `ceil(log2 ψ)` is reached. Anomalies are isolated after few splits,
//! so a short average path length means a high score.
//!
//! The score is `s = 2^(-E[h(x)] / c(ψ))`, where `h(x)` is the depth of the
//! leaf reached plus `c(leaf size)`, and `c(n)` is the average path length of
//! an unsuccessful binary-search-tree lookup among `n` items. Scores close to
//! 1 are anomalies, scores well below 0.5 are normal, and 0.5 everywhere means
//! the data contains no structure to isolate.
//!
//! Trees are stored as flat vectors of nodes, so a forest serialises
//! compactly. For scoring, each tree is also kept in a derived layout (built
//! after fitting or deserialising, never serialised) in which leaves point to
//! themselves; [`Forest::score`] then walks eight trees at a time for a fixed
//! number of steps without branching on the data, and does not allocate.

use serde::{Deserialize, Serialize};

use crate::FitError;
use cloudsentinel_core::rng::Rng;

/// Euler–Mascheroni constant, used to approximate harmonic numbers.
const EULER_GAMMA: f64 = 0.577_215_664_9;

/// Parameters for [`Forest::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct ForestParams {
    /// Number of trees (default 100).
    pub trees: usize,
    /// Rows drawn for each tree (default 256); capped at the number of rows.
    pub sample_size: usize,
    /// Seed for the random number generator; same seed, same forest.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            sample_size: 256,
            seed: 0,
        }
    }
}

/// One node of a tree. Children always have larger indices than their parent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
enum Node {
    /// Rows with `x[feature] < split` go to `left`, all others to `right`.
    Split {
        feature: u16,
        split: f32,
        left: u32,
        right: u32,
    },
    /// External node that received `size` training rows.
    Leaf { size: u32 },
}

/// A single isolation tree; the root is `nodes[0]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Tree {
    nodes: Vec<Node>,
}

/// Scoring layout of one tree, derived from a [`Tree`] (not serialised).
#[derive(Clone, Debug)]
struct WalkTree {
    /// One step per node, same indices as `Tree::nodes`. A leaf's step leads
    /// back to the leaf itself, so extra steps past a leaf change nothing.
    steps: Vec<Step>,
    /// Per node: for a leaf, the path length `h` (its depth plus
    /// `c(leaf size)`); 0 for split nodes.
    path: Vec<f64>,
}

/// From node `i`, go to `left` if `x[feature] < split`, else to `right`.
#[derive(Clone, Copy, Debug)]
struct Step {
    feature: u16,
    split: f32,
    left: u32,
    right: u32,
}

impl WalkTree {
    /// Builds the scoring layout; also returns the depth of the deepest leaf.
    /// Relies on children having larger indices than their parents (checked
    /// when deserialising), so one forward pass assigns every depth.
    fn new(tree: &Tree) -> (WalkTree, u32) {
        let n = tree.nodes.len();
        let mut depth = vec![0u32; n];
        let mut steps = Vec::with_capacity(n);
        let mut path = vec![0.0; n];
        let mut height = 0;
        for (i, node) in tree.nodes.iter().enumerate() {
            match *node {
                Node::Split {
                    feature,
                    split,
                    left,
                    right,
                } => {
                    depth[left as usize] = depth[i] + 1;
                    depth[right as usize] = depth[i] + 1;
                    steps.push(Step {
                        feature,
                        split,
                        left,
                        right,
                    });
                }
                Node::Leaf { size } => {
                    let me = i as u32;
                    steps.push(Step {
                        feature: 0,
                        split: 0.0,
                        left: me,
                        right: me,
                    });
                    path[i] = f64::from(depth[i]) + average_path(size as usize);
                    height = height.max(depth[i]);
                }
            }
        }
        (WalkTree { steps, path }, height)
    }
}

/// A fitted isolation forest.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(try_from = "ForestData")]
pub struct Forest {
    trees: Vec<Tree>,
    /// Effective subsample size ψ used for every tree.
    sample_size: usize,
    dims: usize,
    /// Scoring layout of `trees` (derived, not serialised).
    #[serde(skip)]
    walk: Vec<WalkTree>,
    /// Depth of the deepest leaf in any tree: the number of steps per walk.
    #[serde(skip)]
    height: u32,
}

/// Unvalidated form of [`Forest`], used only during deserialisation.
#[derive(Deserialize)]
struct ForestData {
    trees: Vec<Tree>,
    sample_size: usize,
    dims: usize,
}

impl TryFrom<ForestData> for Forest {
    type Error = String;

    /// Rejects structurally invalid forests, so that scoring a deserialised
    /// forest can neither panic on an index nor loop forever.
    fn try_from(d: ForestData) -> Result<Forest, String> {
        if d.trees.is_empty() {
            return Err("forest has no trees".into());
        }
        if d.sample_size == 0 {
            return Err("sample_size must be at least 1".into());
        }
        for (t, tree) in d.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(format!("tree {t} has no nodes"));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                if let Node::Split {
                    feature,
                    left,
                    right,
                    ..
                } = *node
                {
                    if feature as usize >= d.dims {
                        return Err(format!("tree {t} node {i}: feature {feature} out of range"));
                    }
                    for child in [left as usize, right as usize] {
                        if child <= i || child >= tree.nodes.len() {
                            return Err(format!("tree {t} node {i}: bad child index {child}"));
                        }
                    }
                }
            }
        }
        Ok(Forest::new(d.trees, d.sample_size, d.dims))
    }
}

/// `c(n)`: average path length of an unsuccessful search in a binary search
/// tree of `n` items, `2 H(n-1) - 2 (n-1) / n`, with `c(1) = 0` and `c(2) = 1`.
fn average_path(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = (n - 1) as f64;
            2.0 * (m.ln() + EULER_GAMMA) - 2.0 * m / n as f64
        }
    }
}

/// `ceil(log2(n))` for `n >= 1`.
fn ceil_log2(n: usize) -> u32 {
    usize::BITS - (n - 1).leading_zeros()
}

impl Forest {
    /// Assembles a forest and builds its scoring layout.
    fn new(trees: Vec<Tree>, sample_size: usize, dims: usize) -> Forest {
        let mut walk = Vec::with_capacity(trees.len());
        let mut height = 0;
        for tree in &trees {
            let (w, h) = WalkTree::new(tree);
            walk.push(w);
            height = height.max(h);
        }
        Forest {
            trees,
            sample_size,
            dims,
            walk,
            height,
        }
    }

    /// Fits an isolation forest to `data` (one row per observation).
    ///
    /// Errors if `data` is empty, rows have different lengths, a value is not
    /// finite, `params.trees` or `params.sample_size` is 0, or there are more
    /// than 65 536 features.
    pub fn fit<D: Rows + ?Sized>(data: &D, params: &ForestParams) -> Result<Forest, FitError> {
        let dims = crate::check_row_iter((0..data.len()).map(|i| data.row(i)))?;
        if params.trees == 0 {
            return Err(FitError::InvalidParam("trees must be at least 1"));
        }
        if params.sample_size == 0 {
            return Err(FitError::InvalidParam("sample_size must be at least 1"));
        }
        if dims > usize::from(u16::MAX) + 1 {
            return Err(FitError::InvalidParam(
                "at most 65536 features are supported",
            ));
        }

        let psi = params.sample_size.min(data.len());
        let height_limit = ceil_log2(psi);
        let mut rng = Rng::new(params.seed);
        // A permutation of row indices. Partially shuffling its first `psi`
        // entries gives a uniform subsample without replacement; starting from
        // the previous tree's permutation does not affect uniformity.
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut trees = Vec::with_capacity(params.trees);
        for _ in 0..params.trees {
            for i in 0..psi {
                let j = i + rng.below(order.len() - i);
                order.swap(i, j);
            }
            let mut rows = order[..psi].to_vec();
            let mut nodes = Vec::new();
            grow(data, &mut rows, 0, height_limit, &mut rng, &mut nodes);
            trees.push(Tree { nodes });
        }
        Ok(Forest::new(trees, psi, dims))
    }

    /// Anomaly score in (0, 1]: higher is more anomalous; around 0.5 or below
    /// is normal. Does not allocate.
    ///
    /// A NaN feature value is routed to the right child at every split.
    ///
    /// # Panics
    /// Panics if `x.len() != self.dims()`.
    pub fn score(&self, x: &[f32]) -> f64 {
        assert_eq!(x.len(), self.dims, "score: wrong number of features");
        // Walk LANES trees side by side, each for exactly `height` steps
        // (a walk that reached its leaf stays there). The walks are
        // independent, so the CPU overlaps their loads instead of waiting on
        // one dependent chain at a time; this halves the time per call.
        const LANES: usize = 8;
        let mut total = 0.0;
        for group in self.walk.chunks(LANES) {
            let mut at = [0u32; LANES];
            for _ in 0..self.height {
                for (tree, i) in group.iter().zip(at.iter_mut()) {
                    let s = tree.steps[*i as usize];
                    let go_left = x[s.feature as usize] < s.split;
                    // The direction is data-dependent, so ask for a
                    // conditional move rather than a branch.
                    *i = std::hint::select_unpredictable(go_left, s.left, s.right);
                }
            }
            for (tree, i) in group.iter().zip(at.iter()) {
                total += tree.path[*i as usize];
            }
        }
        let mean_path = total / self.walk.len() as f64;
        let norm = average_path(self.sample_size);
        if norm == 0.0 {
            // Fitted on a single row: nothing can be isolated.
            return 0.5;
        }
        (-mean_path / norm).exp2()
    }

    /// Number of features the forest was fitted on.
    pub fn dims(&self) -> usize {
        self.dims
    }
}

/// The observations a forest is fitted to: rows of equal length, however they are held.
pub trait Rows {
    fn len(&self) -> usize;
    fn row(&self, i: usize) -> &[f32];
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<R: AsRef<[f32]>> Rows for [R] {
    fn len(&self) -> usize {
        <[R]>::len(self)
    }
    fn row(&self, i: usize) -> &[f32] {
        self[i].as_ref()
    }
}

impl<R: AsRef<[f32]>> Rows for Vec<R> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn row(&self, i: usize) -> &[f32] {
        self[i].as_ref()
    }
}

/// The rows of one set, then those of another, without copying either.
pub struct Chain<'a, A: ?Sized, B: ?Sized>(pub &'a A, pub &'a B);

impl<A: Rows + ?Sized, B: Rows + ?Sized> Rows for Chain<'_, A, B> {
    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }
    fn row(&self, i: usize) -> &[f32] {
        match i.checked_sub(self.0.len()) {
            None => self.0.row(i),
            Some(j) => self.1.row(j),
        }
    }
}

/// Grows the subtree for `rows` and appends it to `nodes` in pre-order;
/// returns the index of the subtree's root.
fn grow<D: Rows + ?Sized>(
    data: &D,
    rows: &mut [usize],
    depth: u32,
    height_limit: u32,
    rng: &mut Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let id = nodes.len() as u32;
    let leaf = Node::Leaf {
        size: rows.len() as u32,
    };
    if depth >= height_limit || rows.len() <= 1 {
        nodes.push(leaf);
        return id;
    }

    // Features that are not constant among these rows, with their range.
    let mut candidates: Vec<(usize, f32, f32)> = Vec::new();
    for (feature, &first) in data.row(rows[0]).iter().enumerate() {
        let (min, max) = rows
            .iter()
            .map(|&r| data.row(r)[feature])
            .fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if min < max {
            candidates.push((feature, min, max));
        }
    }
    if candidates.is_empty() {
        nodes.push(leaf);
        return id;
    }

    let (feature, min, max) = candidates[rng.below(candidates.len())];
    let t = rng.unit();
    let mut split = (f64::from(min) + t * (f64::from(max) - f64::from(min))) as f32;
    if split <= min {
        // Rounding landed on the minimum; the smallest value above it still
        // separates the minimum (left) from the maximum (right).
        split = min.next_up();
    }

    // Partition: rows with value < split first. Both sides are non-empty
    // because min < split <= max.
    let mut n_left = 0;
    for i in 0..rows.len() {
        if data.row(rows[i])[feature] < split {
            rows.swap(n_left, i);
            n_left += 1;
        }
    }

    nodes.push(Node::Split {
        feature: feature as u16,
        split,
        left: 0,
        right: 0,
    });
    let (left_rows, right_rows) = rows.split_at_mut(n_left);
    let left = grow(data, left_rows, depth + 1, height_limit, rng, nodes);
    let right = grow(data, right_rows, depth + 1, height_limit, rng, nodes);
    nodes[id as usize] = Node::Split {
        feature: feature as u16,
        split,
        left,
        right,
    };
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal sample via Box–Muller.
    fn gaussian(rng: &mut Rng) -> f32 {
        let u1 = 1.0 - rng.unit(); // (0, 1], safe for ln
        let u2 = rng.unit();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    fn cluster(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| (0..dims).map(|_| gaussian(&mut rng)).collect())
            .collect()
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    #[test]
    fn average_path_matches_known_values() {
        assert_eq!(average_path(1), 0.0);
        assert_eq!(average_path(2), 1.0);
        // c(256) ≈ 10.2448 (value commonly quoted for the default ψ).
        assert!(
            (average_path(256) - 10.2448).abs() < 1e-3,
            "{}",
            average_path(256)
        );
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(256), 8);
        assert_eq!(ceil_log2(257), 9);
    }

    /// Straightforward score from the definition, walking the stored nodes.
    fn reference_score(forest: &Forest, x: &[f32]) -> f64 {
        let mut total = 0.0;
        for tree in &forest.trees {
            let (mut i, mut depth) = (0, 0.0);
            loop {
                match tree.nodes[i] {
                    Node::Split {
                        feature,
                        split,
                        left,
                        right,
                    } => {
                        i = if x[feature as usize] < split {
                            left
                        } else {
                            right
                        } as usize;
                        depth += 1.0;
                    }
                    Node::Leaf { size } => {
                        total += depth + average_path(size as usize);
                        break;
                    }
                }
            }
        }
        let mean = total / forest.trees.len() as f64;
        2f64.powf(-mean / average_path(forest.sample_size))
    }

    #[test]
    fn score_matches_reference_definition() {
        let data = cluster(500, 3, 11);
        // 13 trees: not a multiple of the 8 lanes.
        let p = ForestParams {
            trees: 13,
            sample_size: 100,
            seed: 1,
        };
        let forest = Forest::fit(&data, &p).unwrap();
        assert_eq!(forest.height, 7); // ceil(log2 100), reached by some leaf
        let probes = cluster(200, 3, 12);
        for x in data
            .iter()
            .chain(&probes)
            .chain([vec![9.0, -9.0, 0.0]].iter())
        {
            let (fast, slow) = (forest.score(x), reference_score(&forest, x));
            assert!((fast - slow).abs() < 1e-12, "{x:?}: {fast} vs {slow}");
        }
    }

    #[test]
    fn outlier_scores_high_and_inliers_low() {
        let mut data = cluster(1000, 2, 1);
        data.push(vec![8.0, 8.0]);
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        let outlier = forest.score(&[8.0, 8.0]);
        let inliers: Vec<f64> = data[..1000].iter().map(|x| forest.score(x)).collect();
        let max_inlier = inliers.iter().cloned().fold(f64::MIN, f64::max);
        let med = median(inliers);
        assert!(outlier > 0.65, "outlier score {outlier}");
        assert!(
            outlier > max_inlier,
            "outlier {outlier} <= max inlier {max_inlier}"
        );
        assert!(med < 0.55, "median inlier score {med}");
    }

    #[test]
    fn same_seed_same_scores_different_seed_differs() {
        let data = cluster(300, 3, 2);
        let p = ForestParams {
            trees: 20,
            sample_size: 64,
            seed: 5,
        };
        let a = Forest::fit(&data, &p).unwrap();
        let b = Forest::fit(&data, &p).unwrap();
        let c = Forest::fit(&data, &ForestParams { seed: 6, ..p }).unwrap();
        let probe = [0.3, -1.2, 2.0];
        assert_eq!(a.score(&probe), b.score(&probe));
        for x in &data {
            assert_eq!(a.score(x), b.score(x));
        }
        assert_ne!(a.score(&probe), c.score(&probe));
    }

    #[test]
    fn serde_roundtrip_preserves_scores() {
        let data = cluster(200, 4, 3);
        let p = ForestParams {
            trees: 10,
            ..ForestParams::default()
        };
        let forest = Forest::fit(&data, &p).unwrap();
        let json = serde_json::to_string(&forest).unwrap();
        let back: Forest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.dims(), 4);
        for x in data.iter().chain([vec![5.0, -5.0, 0.0, 1.0]].iter()) {
            assert_eq!(forest.score(x), back.score(x));
        }
    }

    #[test]
    fn deserialising_a_malformed_forest_is_an_error() {
        // A split whose child points back at itself would loop forever.
        let cyclic = r#"{"trees":[{"nodes":[{"Split":{"feature":0,"split":1.0,"left":0,"right":1}},{"Leaf":{"size":1}}]}],"sample_size":2,"dims":1}"#;
        let err = serde_json::from_str::<Forest>(cyclic).unwrap_err();
        assert!(err.to_string().contains("bad child index 0"), "{err}");
        let bad_feature = r#"{"trees":[{"nodes":[{"Split":{"feature":3,"split":1.0,"left":1,"right":2}},{"Leaf":{"size":1}},{"Leaf":{"size":1}}]}],"sample_size":2,"dims":1}"#;
        assert!(serde_json::from_str::<Forest>(bad_feature).is_err());
        let no_trees = r#"{"trees":[],"sample_size":2,"dims":1}"#;
        assert!(serde_json::from_str::<Forest>(no_trees).is_err());
        let ok = r#"{"trees":[{"nodes":[{"Split":{"feature":0,"split":1.0,"left":1,"right":2}},{"Leaf":{"size":1}},{"Leaf":{"size":1}}]}],"sample_size":2,"dims":1}"#;
        let f: Forest = serde_json::from_str(ok).unwrap();
        // Every point has path length 1 = c(2), so the score is exactly 0.5.
        assert_eq!(f.score(&[0.0]), 0.5);
    }

    #[test]
    fn constant_column_is_handled() {
        let mut data = cluster(200, 2, 4);
        for row in &mut data {
            row.push(7.0);
        }
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        // The constant column is never split on, so changing it has no effect.
        assert_eq!(
            forest.score(&[0.0, 0.0, 7.0]),
            forest.score(&[0.0, 0.0, -100.0])
        );
        let s = forest.score(&[0.0, 0.0, 7.0]);
        assert!(s > 0.0 && s < 1.0);
    }

    #[test]
    fn all_identical_rows_score_exactly_one_half() {
        let data = vec![vec![1.0f32, 2.0]; 50];
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        // Every tree is one leaf of size ψ, so h = c(ψ) and s = 2^-1 (up to
        // rounding in the sum over trees).
        assert!((forest.score(&[1.0, 2.0]) - 0.5).abs() < 1e-12);
        assert!((forest.score(&[100.0, -3.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn rows_without_features_score_one_half() {
        let forest = Forest::fit(&[vec![], vec![], vec![]][..], &ForestParams::default()).unwrap();
        assert_eq!(forest.dims(), 0);
        assert!((forest.score(&[]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn two_sets_of_rows_chained_fit_as_one() {
        let a = cluster(300, 3, 8);
        let b = cluster(20, 3, 9);
        let joined: Vec<Vec<f32>> = a.iter().chain(&b).cloned().collect();
        let chained = Forest::fit(&Chain(&a, &b), &ForestParams::default()).unwrap();
        let copied = Forest::fit(&joined, &ForestParams::default()).unwrap();
        for x in &joined {
            assert_eq!(chained.score(x), copied.score(x));
        }
        let b_only = Forest::fit(&Chain(&a[..0], &b), &ForestParams::default()).unwrap();
        assert_eq!(
            b_only.score(&b[0]),
            Forest::fit(&b, &ForestParams::default())
                .unwrap()
                .score(&b[0])
        );
    }

    #[test]
    fn single_row_scores_one_half() {
        let forest = Forest::fit(&[vec![1.0f32]][..], &ForestParams::default()).unwrap();
        assert_eq!(forest.score(&[1.0]), 0.5);
    }

    #[test]
    fn fit_rejects_bad_input() {
        let p = ForestParams::default();
        assert_eq!(
            Forest::fit::<[Vec<f32>]>(&[], &p).unwrap_err(),
            FitError::Empty
        );
        let ragged = vec![vec![1.0f32, 2.0], vec![3.0, 4.0], vec![5.0]];
        assert_eq!(
            Forest::fit(&ragged, &p).unwrap_err(),
            FitError::Ragged {
                row: 2,
                expected: 2,
                found: 1
            }
        );
        let nan = vec![vec![1.0f32, 2.0], vec![3.0, f32::NAN]];
        assert_eq!(
            Forest::fit(&nan, &p).unwrap_err(),
            FitError::NonFinite { row: 1, col: 1 }
        );
        let ok = vec![vec![1.0f32], vec![2.0]];
        assert!(matches!(
            Forest::fit(
                &ok,
                &ForestParams {
                    trees: 0,
                    ..p.clone()
                }
            ),
            Err(FitError::InvalidParam(_))
        ));
        assert!(matches!(
            Forest::fit(
                &ok,
                &ForestParams {
                    sample_size: 0,
                    ..p
                }
            ),
            Err(FitError::InvalidParam(_))
        ));
    }

    #[test]
    fn deviation_in_one_dimension_scores_higher_than_centre() {
        let data = cluster(1000, 5, 6);
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        let centre = forest.score(&[0.0; 5]);
        let off = forest.score(&[0.0, 0.0, 6.0, 0.0, 0.0]);
        assert!(off > centre + 0.05, "off-axis {off} vs centre {centre}");
    }

    #[test]
    fn sample_size_is_capped_and_trees_have_bounded_depth() {
        let data = cluster(40, 2, 7);
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        assert_eq!(forest.sample_size, 40);
        assert_eq!(forest.trees.len(), 100);
        // Height limit ceil(log2 40) = 6, so at most 2^7 - 1 nodes per tree,
        // and leaf sizes add up to the subsample size.
        for tree in &forest.trees {
            assert!(tree.nodes.len() <= 127);
            let total: u32 = tree
                .nodes
                .iter()
                .map(|n| match n {
                    Node::Leaf { size } => *size,
                    Node::Split { .. } => 0,
                })
                .sum();
            assert_eq!(total, 40);
        }
    }

    #[test]
    #[should_panic(expected = "wrong number of features")]
    fn score_panics_on_wrong_width() {
        let forest = Forest::fit(&cluster(10, 2, 8), &ForestParams::default()).unwrap();
        forest.score(&[1.0]);
    }

    /// Run with `cargo test --release -- --ignored --nocapture score_timing`.
    #[test]
    #[ignore]
    fn score_timing() {
        let data = cluster(5000, 20, 9);
        let forest = Forest::fit(&data, &ForestParams::default()).unwrap();
        let probes = cluster(10_000, 20, 10);
        let start = std::time::Instant::now();
        let mut sink = 0.0;
        for _ in 0..10 {
            for x in &probes {
                sink += forest.score(x);
            }
        }
        let per = start.elapsed().as_nanos() as f64 / 100_000.0;
        println!(
            "Forest::score: {per:.0} ns per call (100 trees, ψ=256, 20 dims), checksum {sink:.3}"
        );
    }
}
