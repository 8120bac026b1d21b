//! The SVG form: a small deterministic layout and a self-contained image.
//!
//! Columns, left to right: people and tools; the control planes, one box each, stacked (the
//! node's own clients in the left column of its box, kube-apiserver on the right with etcd
//! below it, so every arrow into the apiserver has a clear run); extensions and the workers.
//! Each side of a box spreads its arrow ends apart (sorted by where the other end is, so
//! arrows between the same two boxes run side by side); an arrow that would cross a box
//! bends around it; each label takes the first free spot along its arrow.

use std::fmt::Write;

use super::{color, domain_word, Model, Role};
use crate::audit::verify::LinkStatus;
use crate::model::topology::{ComponentKind, TrustDomain};
use crate::report::esc;

const NODE_W: f64 = 200.0;
const NODE_H: f64 = 30.0;
const ROW: f64 = 54.0;
const PAD: f64 = 16.0;
const TITLE: f64 = 24.0;
/// Between the left and right columns of a control-plane box.
const COL_GAP: f64 = 230.0;
/// Between the tools box and the control planes, and between those and the workers.
const TOOLS_GAP: f64 = 190.0;
const WORKERS_GAP: f64 = 270.0;
/// Between stacked boxes.
const BOX_GAP: f64 = 24.0;
/// Between components stacked in a worker's box.
const STACK: f64 = 26.0;
/// Between arrow ends on one side of a box.
const PORT: f64 = 15.0;
const LABEL_FONT: f64 = 11.0;
const LABEL_H: f64 = 15.0;
const MARGIN: f64 = 24.0;
const HEADER: f64 = 34.0;
const LEGEND_H: f64 = 70.0;
/// A line of the findings panel under the legend.
const PANEL_LINE: f64 = 16.0;
/// Findings listed in the panel; beyond that, a count and where to see them all.
const PANEL_MAX: usize = 30;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub(super) fn centered(cx: f64, cy: f64, w: f64, h: f64) -> Rect {
        Rect { x: cx - w / 2.0, y: cy - h / 2.0, w, h }
    }
    pub(super) fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }
    pub(super) fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
    pub(super) fn right(&self) -> f64 {
        self.x + self.w
    }
    pub(super) fn bottom(&self) -> f64 {
        self.y + self.h
    }
    pub(super) fn grow(&self, d: f64) -> Rect {
        Rect { x: self.x - d, y: self.y - d, w: self.w + 2.0 * d, h: self.h + 2.0 * d }
    }
    pub(super) fn contains(&self, (x, y): (f64, f64)) -> bool {
        x > self.x && x < self.right() && y > self.y && y < self.bottom()
    }
    pub(super) fn overlap(&self, o: &Rect) -> f64 {
        let w = self.right().min(o.right()) - self.x.max(o.x);
        let h = self.bottom().min(o.bottom()) - self.y.max(o.y);
        if w > 0.0 && h > 0.0 {
            w * h
        } else {
            0.0
        }
    }
    pub(super) fn union(&self, o: &Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        Rect { x, y, w: self.right().max(o.right()) - x, h: self.bottom().max(o.bottom()) - y }
    }
}

/// Which side of a box an arrow leaves or enters by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left,
    Right,
    Top,
    Bottom,
}

/// Where everything goes.
pub(super) struct Layout {
    pub vertices: Vec<Rect>,
    pub groups: Vec<Option<Rect>>,
    /// Per edge: start, control point, end (a quadratic Bézier; a straight line when the
    /// control point is the midpoint).
    pub paths: Vec<[(f64, f64); 3]>,
    /// Per edge: the label's box.
    pub labels: Vec<Rect>,
}

pub(super) fn render(m: &Model) -> String {
    let l = layout(m);
    draw(m, &l)
}

pub(super) fn layout(m: &Model) -> Layout {
    // Heights depend on how many arrows end on a side, which depends on where boxes are:
    // place, count, place again.
    let mut heights = vec![NODE_H; m.vertices.len()];
    let mut rects = place(m, &heights);
    for _ in 0..2 {
        let ends = ends(m, &rects);
        for (v, h) in heights.iter_mut().enumerate() {
            let most =
                [Side::Left, Side::Right].iter().map(|s| ends.iter().filter(|e| e.0 == v && e.1 == *s).count()).max();
            *h = NODE_H.max(PORT * most.unwrap_or(0) as f64 + 10.0);
        }
        rects = place(m, &heights);
    }
    let groups = group_rects(m, &rects);
    let paths = route_all(m, &rects);
    let labels = place_labels(m, &rects, &groups, &paths);
    Layout { vertices: rects, groups, paths, labels }
}

/// The slot of a component in a control-plane box: (column, row), column 0 left, 1 right.
fn cp_slot(kind: Option<ComponentKind>) -> (usize, f64) {
    match kind {
        Some(ComponentKind::Scheduler) => (0, 0.0),
        Some(ComponentKind::ControllerManager) => (0, 1.0),
        Some(ComponentKind::Kubelet) => (0, 3.0),
        Some(ComponentKind::KubeProxy) => (0, 4.0),
        Some(ComponentKind::ApiServer) => (1, 2.0),
        Some(ComponentKind::Etcd) => (1, 5.0),
        _ => (0, 5.0),
    }
}

fn place(m: &Model, heights: &[f64]) -> Vec<Rect> {
    let mut rects = vec![Rect { x: 0.0, y: 0.0, w: NODE_W, h: NODE_H }; m.vertices.len()];
    let x_tools = 0.0;
    let x_left = NODE_W + 2.0 * PAD + TOOLS_GAP;
    let x_right = x_left + NODE_W + COL_GAP;
    let members = |g: usize| (0..m.vertices.len()).filter(move |&v| m.vertices[v].group == g);
    // A load balancer stands between the apiservers and the workers.
    let endpoint = m.groups.iter().position(|g| g.role == Role::Endpoint);
    let x_endpoint = x_right + NODE_W + 2.0 * PAD + TOOLS_GAP;
    let x_workers = match endpoint {
        Some(_) => x_endpoint + NODE_W + 2.0 * PAD + WORKERS_GAP,
        None => x_right + NODE_W + 2.0 * PAD + WORKERS_GAP,
    };
    let kind_in = |g: usize, k: ComponentKind| members(g).find(|&v| m.vertices[v].kind == Some(k));

    // Control planes, stacked.
    let mut top = 0.0;
    let mut first_api: Option<(f64, f64)> = None; // (apiserver centre y, etcd centre y)
    for (g, _) in m.groups.iter().enumerate().filter(|(_, g)| g.role == Role::ControlPlane) {
        let row_y = |row: f64| top + TITLE + PAD + row * ROW + NODE_H / 2.0;
        let api_y = row_y(2.0);
        let api_h = kind_in(g, ComponentKind::ApiServer).map_or(NODE_H, |v| heights[v]);
        // The apiserver may grow upwards past row 0: push the whole box down so it fits.
        let lift = (TITLE + PAD + api_h / 2.0 - (api_y - top)).max(0.0);
        // Left column top-down at its rows (or lower when a box above grew), etcd under the
        // apiserver and below the whole left column so etcdctl's arrow has a clear run.
        let mut left: Vec<usize> = members(g).filter(|&v| cp_slot(m.vertices[v].kind).0 == 0).collect();
        left.sort_by(|&a, &b| cp_slot(m.vertices[a].kind).1.total_cmp(&cp_slot(m.vertices[b].kind).1));
        let mut floor = f64::MIN;
        for v in left {
            let y = (row_y(cp_slot(m.vertices[v].kind).1) + lift).max(floor + 14.0 + heights[v] / 2.0);
            rects[v] = Rect::centered(x_left + NODE_W / 2.0, y, NODE_W, heights[v]);
            floor = rects[v].bottom();
        }
        for v in members(g).filter(|&v| cp_slot(m.vertices[v].kind).0 == 1) {
            let mut y = api_y + lift;
            if m.vertices[v].kind == Some(ComponentKind::Etcd) {
                y = (row_y(5.0) + lift).max(api_y + lift + api_h / 2.0 + 44.0 + heights[v] / 2.0);
                y = y.max(floor + 14.0 + heights[v] / 2.0);
            }
            rects[v] = Rect::centered(x_right + NODE_W / 2.0, y, NODE_W, heights[v]);
        }
        let bottom = members(g).map(|v| rects[v].bottom()).fold(top, f64::max);
        if first_api.is_none() {
            let etcd = kind_in(g, ComponentKind::Etcd).map(|v| rects[v].cy());
            first_api = Some((api_y + lift, etcd.unwrap_or(row_y(5.0) + lift)));
        }
        top = bottom + PAD + BOX_GAP;
    }
    let (api_y, etcd_y) = first_api.unwrap_or((TITLE + PAD + NODE_H / 2.0, TITLE + PAD + 3.0 * ROW));

    // The endpoints, stacked around the middle of the apiservers.
    if let Some(g) = endpoint {
        let apis: Vec<f64> = (0..m.vertices.len())
            .filter(|&v| m.vertices[v].kind == Some(ComponentKind::ApiServer))
            .map(|v| rects[v].cy())
            .collect();
        let middle = if apis.is_empty() { api_y } else { apis.iter().sum::<f64>() / apis.len() as f64 };
        let list: Vec<usize> = members(g).collect();
        let total: f64 = list.iter().map(|&v| heights[v] + STACK).sum::<f64>() - STACK;
        let mut y = middle - total / 2.0;
        for v in list {
            rects[v] = Rect { x: x_endpoint, y, w: NODE_W, h: heights[v] };
            y += heights[v] + STACK;
        }
    }

    // People and tools: the two kubectl just above and below the first apiserver's middle,
    // etcdctl level with its etcd (or below them), anything else underneath.
    let tools: Vec<usize> =
        (0..m.vertices.len()).filter(|&v| m.groups[m.vertices[v].group].role == Role::Tools).collect();
    let mut floor = f64::MIN;
    for kind in
        [Some(ComponentKind::Admin), Some(ComponentKind::SuperAdmin), Some(ComponentKind::EtcdHealthcheck), None]
    {
        for &v in tools.iter().filter(|&&v| kind.is_none_or(|k| m.vertices[v].kind == Some(k))) {
            let k = m.vertices[v].kind;
            if kind.is_none()
                && matches!(k, Some(ComponentKind::Admin | ComponentKind::SuperAdmin | ComponentKind::EtcdHealthcheck))
            {
                continue;
            }
            let h = heights[v];
            let want = match k {
                Some(ComponentKind::Admin) => api_y - 12.0 - h / 2.0,
                Some(ComponentKind::SuperAdmin) => api_y + 12.0 + h / 2.0,
                Some(ComponentKind::EtcdHealthcheck) => etcd_y,
                _ => f64::MIN,
            };
            let y = want.max(floor + 24.0 + h / 2.0);
            rects[v] = Rect::centered(x_tools + NODE_W / 2.0, y, NODE_W, h);
            floor = rects[v].bottom();
        }
    }

    // Extensions and workers: one column, centred on the first apiserver.
    let column: Vec<usize> = (0..m.groups.len())
        .filter(|&g| matches!(m.groups[g].role, Role::Extensions | Role::Worker | Role::MoreWorkers))
        .filter(|&g| members(g).next().is_some())
        .collect();
    let box_h = |g: usize| TITLE + 2.0 * PAD + members(g).map(|v| heights[v] + STACK).sum::<f64>() - STACK;
    let total: f64 = column.iter().map(|&g| box_h(g) + BOX_GAP).sum::<f64>() - BOX_GAP;
    let mut y = api_y - total / 2.0;
    for g in column {
        let mut inner = y + TITLE + PAD;
        let mut order: Vec<usize> = members(g).collect();
        order.sort_by_key(|&v| match m.vertices[v].kind {
            Some(ComponentKind::Kubelet) => 0,
            Some(ComponentKind::KubeProxy) => 1,
            _ => 2,
        });
        for v in order {
            rects[v] = Rect { x: x_workers, y: inner, w: NODE_W, h: heights[v] };
            inner += heights[v] + STACK;
        }
        y += box_h(g) + BOX_GAP;
    }
    rects
}

fn group_rects(m: &Model, rects: &[Rect]) -> Vec<Option<Rect>> {
    (0..m.groups.len())
        .map(|g| {
            let mut it = (0..m.vertices.len()).filter(|&v| m.vertices[v].group == g).map(|v| rects[v]);
            let first = it.next()?;
            let b = it.fold(first, |a, r| a.union(&r));
            Some(Rect { x: b.x - PAD, y: b.y - PAD - TITLE, w: b.w + 2.0 * PAD, h: b.h + 2.0 * PAD + TITLE })
        })
        .collect()
}

/// Per edge end: (vertex, side, edge index, is the start).
fn ends(m: &Model, rects: &[Rect]) -> Vec<(usize, Side, usize, bool)> {
    let mut out = Vec::new();
    for (i, e) in m.edges.iter().enumerate() {
        let (a, b) = (rects[e.from], rects[e.to]);
        let (dx, dy) = (b.cx() - a.cx(), b.cy() - a.cy());
        // Boxes in different columns meet side to side; in one column, top to bottom.
        let (sa, sb) = if dx.abs() >= 0.75 * NODE_W {
            if dx > 0.0 {
                (Side::Right, Side::Left)
            } else {
                (Side::Left, Side::Right)
            }
        } else if dy > 0.0 {
            (Side::Bottom, Side::Top)
        } else {
            (Side::Top, Side::Bottom)
        };
        out.push((e.from, sa, i, true));
        out.push((e.to, sb, i, false));
    }
    out
}

/// The point where each edge leaves and enters its boxes, spread along each side.
fn ports(m: &Model, rects: &[Rect], bows: &[(f64, f64)]) -> Vec<[(f64, f64); 2]> {
    let all = ends(m, rects);
    let mut out = vec![[(0.0, 0.0); 2]; m.edges.len()];
    for &(v, side, _, _) in &all {
        let r = rects[v];
        let mut here: Vec<&(usize, Side, usize, bool)> = all.iter().filter(|e| e.0 == v && e.1 == side).collect();
        let other = |e: &(usize, Side, usize, bool)| {
            let edge = &m.edges[e.2];
            let o = rects[if e.3 { edge.to } else { edge.from }];
            match side {
                Side::Left | Side::Right => o.cy(),
                Side::Top | Side::Bottom => o.cx(),
            }
        };
        // Two arrows between the same boxes: the one that bows up (or left) takes the upper
        // (or left) end on both boxes, so they never cross.
        let tie = |e: &(usize, Side, usize, bool)| {
            let (bx, by) = bows[e.2];
            if matches!(side, Side::Left | Side::Right) {
                by
            } else {
                bx
            }
        };
        here.sort_by(|a, b| other(a).total_cmp(&other(b)).then(tie(a).total_cmp(&tie(b))).then(a.2.cmp(&b.2)));
        let len = if matches!(side, Side::Left | Side::Right) { r.h } else { r.w };
        let step = PORT.min((len - 6.0) / here.len() as f64);
        for (k, e) in here.iter().enumerate() {
            let off = (k as f64 - (here.len() - 1) as f64 / 2.0) * step;
            let p = match side {
                Side::Left => (r.x, r.cy() + off),
                Side::Right => (r.right(), r.cy() + off),
                Side::Top => (r.cx() + off, r.y),
                Side::Bottom => (r.cx() + off, r.bottom()),
            };
            out[e.2][usize::from(!e.3)] = p;
        }
    }
    out
}

/// How far an arrow that has a partner going the other way bows out of the straight line.
const BOW: f64 = 16.0;

/// Per edge, how its middle is displaced before routing: nothing, or [`BOW`] to its left
/// when the reverse edge exists (so the two of a pair bow apart).
fn bows(m: &Model, rects: &[Rect]) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); m.edges.len()];
    for (i, e) in m.edges.iter().enumerate() {
        if m.edges.iter().any(|o| o.from == e.to && o.to == e.from) {
            let (a, b) = (rects[e.from], rects[e.to]);
            let (dx, dy) = (b.cx() - a.cx(), b.cy() - a.cy());
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            out[i] = (-dy / len * BOW, dx / len * BOW);
        }
    }
    out
}

/// Route every edge; then, pair by pair, bow both of a pair the other way when that makes
/// them cross fewer other arrows.
fn route_all(m: &Model, rects: &[Rect]) -> Vec<[(f64, f64); 3]> {
    let mut bows = bows(m, rects);
    let mut paths = route(m, rects, &bows);
    for i in 0..m.edges.len() {
        let e = &m.edges[i];
        let Some(j) = m.edges.iter().position(|o| o.from == e.to && o.to == e.from) else { continue };
        if j < i {
            continue;
        }
        let mut flipped = bows.clone();
        for k in [i, j] {
            flipped[k] = (-bows[k].0, -bows[k].1);
        }
        let other = route(m, rects, &flipped);
        if crossings(&other, &[i, j]) < crossings(&paths, &[i, j]) {
            bows = flipped;
            paths = other;
        }
    }
    paths
}

/// How many times the edges `of` cross the others.
fn crossings(paths: &[[(f64, f64); 3]], of: &[usize]) -> usize {
    let poly = |p: &[(f64, f64); 3]| (0..=16).map(|k| bezier(p, f64::from(k) / 16.0)).collect::<Vec<_>>();
    let lines: Vec<Vec<(f64, f64)>> = paths.iter().map(poly).collect();
    let mut n = 0;
    for &i in of {
        for (_, other) in lines.iter().enumerate().filter(|(j, _)| !of.contains(j)) {
            for a in lines[i].windows(2) {
                n += other.windows(2).filter(|b| crosses(a[0], a[1], b[0], b[1])).count();
            }
        }
    }
    n
}

/// Whether segments ab and cd cross (touching at an end does not count).
fn crosses(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let side = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0);
    let (d1, d2) = (side(c, d, a), side(c, d, b));
    let (d3, d4) = (side(a, b, c), side(a, b, d));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

fn bezier(p: &[(f64, f64); 3], t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    (u * u * p[0].0 + 2.0 * u * t * p[1].0 + t * t * p[2].0, u * u * p[0].1 + 2.0 * u * t * p[1].1 + t * t * p[2].1)
}

/// Straight when nothing is in the way; else the least bend that clears every other box.
fn route(m: &Model, rects: &[Rect], bows: &[(f64, f64)]) -> Vec<[(f64, f64); 3]> {
    let ports = ports(m, rects, bows);
    let mut out = Vec::new();
    for (i, e) in m.edges.iter().enumerate() {
        let [a, b] = ports[i];
        let (mx, my) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt().max(1.0);
        let (nx, ny) = (-(b.1 - a.1) / len, (b.0 - a.0) / len);
        let hits = |p: &[(f64, f64); 3]| {
            (1..40)
                .map(|k| bezier(p, k as f64 / 40.0))
                .filter(|q| rects.iter().enumerate().any(|(v, r)| v != e.from && v != e.to && r.grow(4.0).contains(*q)))
                .count()
        };
        let (bx, by) = bows[i];
        // The bow's side, as a signed offset along this edge's left normal.
        let base = bx * nx + by * ny;
        let mut best: Option<([(f64, f64); 3], usize)> = None;
        for off in [0.0, 40.0, -40.0, 80.0, -80.0, 130.0, -130.0, 190.0, -190.0, 260.0, -260.0, 340.0, -340.0] {
            // A quadratic Bézier peaks at half its control point's offset.
            let off = 2.0 * (base + off);
            let p = [a, (mx + nx * off, my + ny * off), b];
            let h = hits(&p);
            if best.as_ref().is_none_or(|(_, bh)| h < *bh) {
                best = Some((p, h));
            }
            if h == 0 {
                break;
            }
        }
        out.push(best.expect("at least one candidate").0);
    }
    out
}

/// Roughly how wide a text is at a font size (sans-serif, averaged over the glyphs used here).
pub(super) fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.58
}

/// Each label on its own arrow, at the spot (tried from the middle outwards) that covers no
/// box and no other label, and as little of other arrows as can be.
fn place_labels(m: &Model, rects: &[Rect], groups: &[Option<Rect>], paths: &[[(f64, f64); 3]]) -> Vec<Rect> {
    let mut taken: Vec<Rect> = rects.iter().map(|r| r.grow(3.0)).collect();
    for (g, r) in groups.iter().enumerate() {
        if let Some(r) = r {
            taken.push(Rect { x: r.x, y: r.y, w: text_width(&m.groups[g].title(), 12.0) + 24.0, h: TITLE });
        }
    }
    let samples: Vec<Vec<(f64, f64)>> =
        paths.iter().map(|p| (1..60).map(|k| bezier(p, f64::from(k) / 60.0)).collect()).collect();
    let mut out = Vec::new();
    for (i, e) in m.edges.iter().enumerate() {
        let w = text_width(&e.label, LABEL_FONT) + 8.0;
        let mut best: Option<(Rect, f64)> = None;
        for shift in [0.0, 10.0, -10.0] {
            for t in [0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.2, 0.8] {
                let (x, y) = bezier(&paths[i], t);
                let r = Rect::centered(x, y + shift, w, LABEL_H);
                let covered: f64 = taken.iter().map(|o| o.overlap(&r)).sum();
                let crossed = samples
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, pts)| pts.iter().filter(|p| r.contains(**p)).count())
                    .sum::<usize>();
                let cost = 1000.0 * covered + crossed as f64 + shift.abs();
                if best.as_ref().is_none_or(|(_, c)| cost < *c) {
                    best = Some((r, cost));
                }
            }
        }
        let r = best.expect("at least one candidate").0;
        taken.push(r.grow(1.0));
        out.push(r);
    }
    out
}

/// A text cut to fit a width, with an ellipsis.
fn fit(s: &str, width: f64, size: f64) -> String {
    if text_width(s, size) <= width {
        return s.to_string();
    }
    let keep = ((width / (size * 0.58)) as usize).saturating_sub(1);
    format!("{}…", s.chars().take(keep).collect::<String>())
}

const STATUSES: [LinkStatus; 4] = [LinkStatus::Ok, LinkStatus::Warning, LinkStatus::Broken, LinkStatus::Unknown];

fn dash(d: TrustDomain) -> &'static str {
    match d {
        TrustDomain::Cluster => "",
        TrustDomain::Etcd => " stroke-dasharray=\"8 4\"",
        TrustDomain::FrontProxy => " stroke-dasharray=\"2 3\"",
    }
}

fn group_style(role: Role) -> (&'static str, &'static str, &'static str) {
    match role {
        Role::Tools => ("#fdf7e7", "#c9a94f", ""),
        Role::ControlPlane => ("#eaf1fb", "#7b9fd4", ""),
        Role::Endpoint => ("#fdf6e3", "#c9a227", ""),
        Role::Extensions => ("#f5f0fb", "#a48cc8", ""),
        Role::Worker => ("#f3f4f6", "#9aa1ab", ""),
        Role::MoreWorkers => ("#f3f4f6", "#9aa1ab", " stroke-dasharray=\"6 4\""),
    }
}

fn draw(m: &Model, l: &Layout) -> String {
    let mut bounds = l.groups.iter().flatten().fold(None, |a: Option<Rect>, r| Some(a.map_or(*r, |a| a.union(r))));
    for r in &l.labels {
        bounds = bounds.map(|b| b.union(r));
    }
    let b = bounds.unwrap_or(Rect { x: 0.0, y: 0.0, w: 400.0, h: 100.0 });
    let width = (b.w + 2.0 * MARGIN).max(820.0);
    let panel = panel_lines(m);
    let height = b.h + 2.0 * MARGIN + HEADER + LEGEND_H + panel.len() as f64 * PANEL_LINE;
    let (dx, dy) = (MARGIN - b.x, MARGIN + HEADER - b.y);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">"
    );
    let (components, links) = m.counts;
    let _ = writeln!(o, "<title>kubepki: who talks to whom ({components} components, {links} TLS links)</title>");
    let _ = writeln!(o, "<defs>");
    for s in STATUSES {
        let _ = writeln!(
            o,
            "<marker id=\"arrow-{}\" viewBox=\"0 0 10 8\" refX=\"10\" refY=\"4\" markerWidth=\"10\" markerHeight=\"8\" \
             markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\" fill=\"{}\"/></marker>",
            s.word(),
            color(s)
        );
    }
    let _ = writeln!(o, "</defs>");
    let _ = writeln!(o, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        o,
        "<text x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"15\" font-weight=\"bold\" fill=\"#1f2933\">Who talks to whom: \
         {components} components, {links} TLS links <tspan font-weight=\"normal\" font-size=\"12\" fill=\"#52606d\">\
         (arrow: client → server, labelled with the credential the client presents)</tspan></text>",
        MARGIN + 14.0
    );
    let _ = writeln!(o, "<g transform=\"translate({dx:.1},{dy:.1})\">");
    groups(&mut o, m, l);
    edges(&mut o, m, l);
    vertices(&mut o, m, l);
    labels(&mut o, m, l);
    legend(&mut o, b.x, b.bottom() + MARGIN);
    findings_panel(&mut o, &panel, b.x, b.bottom() + MARGIN + LEGEND_H);
    let _ = writeln!(o, "</g>\n</svg>");
    o
}

fn groups(o: &mut String, m: &Model, l: &Layout) {
    let _ = writeln!(o, "<g class=\"groups\">");
    for (g, r) in l.groups.iter().enumerate() {
        let Some(r) = r else { continue };
        let (fill, stroke, dash) = group_style(m.groups[g].role);
        let title = m.groups[g].title();
        let _ = writeln!(
            o,
            "<g class=\"group\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"10\" \
             fill=\"{fill}\" stroke=\"{stroke}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\" fill=\"#3e4c59\">{}</text></g>",
            esc(&title),
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + 12.0,
            r.y + 17.0,
            esc(&fit(&title, r.w - 24.0, 12.0))
        );
    }
    let _ = writeln!(o, "</g>");
}

fn edges(o: &mut String, m: &Model, l: &Layout) {
    let _ = writeln!(o, "<g class=\"links\" fill=\"none\">");
    for (i, e) in m.edges.iter().enumerate() {
        let [a, c, b] = l.paths[i];
        let width = if e.status == LinkStatus::Broken { 2.4 } else { 1.6 };
        let _ = writeln!(
            o,
            "<g class=\"link\" data-status=\"{}\"><title>{} ({}, {}){}</title><path d=\"M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}\" \
             stroke=\"{}\" stroke-width=\"{width}\"{} marker-end=\"url(#arrow-{})\"/></g>",
            e.status.word(),
            esc(&e.links_text()),
            e.status.word(),
            domain_word(e.domain),
            esc(&m.note_lines(&e.notes).iter().map(|n| format!("\n{n}")).collect::<String>()),
            a.0,
            a.1,
            c.0,
            c.1,
            b.0,
            b.1,
            color(e.status),
            dash(e.domain),
            e.status.word(),
        );
    }
    let _ = writeln!(o, "</g>");
}

fn vertices(o: &mut String, m: &Model, l: &Layout) {
    let _ = writeln!(o, "<g class=\"components\">");
    for (v, x) in m.vertices.iter().enumerate() {
        let r = l.vertices[v];
        let (fill, weight) = match x.kind {
            Some(ComponentKind::ApiServer) => ("#d6e4f7", " font-weight=\"bold\""),
            Some(ComponentKind::Etcd) => ("#fff1db", ""),
            None => ("#f3f4f6", " font-style=\"italic\""),
            _ => ("#ffffff", ""),
        };
        // A component holding a certificate at fault: outlined in the finding's colour, its
        // findings in the tooltip.
        let (stroke, stroke_w, title) = match &x.fault {
            Some((status, notes)) => {
                let mut t = format!("{}: holds a certificate at fault", x.id);
                for n in m.note_lines(notes) {
                    t.push('\n');
                    t.push_str(&n);
                }
                (color(*status), "3", t)
            }
            None => ("#52606d", "1", x.id.clone()),
        };
        let _ = writeln!(
            o,
            "<g class=\"component\" data-id=\"{}\"{}><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_w}\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\" fill=\"#1f2933\"{weight}>{}</text></g>",
            esc(&x.id),
            if x.fault.is_some() { " data-fault=\"true\"" } else { "" },
            esc(&title),
            r.x,
            r.y,
            r.w,
            r.h,
            r.cx(),
            r.cy() + 4.0,
            esc(&fit(&x.label, r.w - 12.0, 12.0))
        );
    }
    let _ = writeln!(o, "</g>");
}

fn labels(o: &mut String, m: &Model, l: &Layout) {
    let _ = writeln!(o, "<g class=\"labels\" font-size=\"{LABEL_FONT}\">");
    for (i, e) in m.edges.iter().enumerate() {
        let r = l.labels[i];
        let _ = writeln!(
            o,
            "<g class=\"label\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"#ffffff\" \
             fill-opacity=\"0.92\" stroke=\"{}\" stroke-width=\"0.6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             fill=\"#1f2933\">{}</text></g>",
            r.x,
            r.y,
            r.w,
            r.h,
            color(e.status),
            r.cx(),
            r.cy() + 4.0,
            esc(&e.label)
        );
    }
    let _ = writeln!(o, "</g>");
}

/// The findings behind the arrows that are not green, numbered as in the tooltips.
fn panel_lines(m: &Model) -> Vec<String> {
    if m.notes.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("findings behind the arrows that are not green ({})", m.notes.len())];
    lines.extend(m.notes.iter().take(PANEL_MAX).enumerate().map(|(i, n)| format!("[{}] {n}", i + 1)));
    if m.notes.len() > PANEL_MAX {
        lines.push(format!("and {} more: kubepki verify lists them all", m.notes.len() - PANEL_MAX));
    }
    lines
}

fn findings_panel(o: &mut String, lines: &[String], x: f64, y: f64) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(o, "<g class=\"findings\" font-size=\"11\" fill=\"#3e4c59\">");
    for (i, line) in lines.iter().enumerate() {
        let weight = if i == 0 { " font-weight=\"bold\"" } else { "" };
        let _ = writeln!(
            o,
            "<text x=\"{x:.1}\" y=\"{:.1}\"{weight}>{}</text>",
            y + 12.0 + i as f64 * PANEL_LINE,
            esc(line)
        );
    }
    let _ = writeln!(o, "</g>");
}

fn legend(o: &mut String, x: f64, y: f64) {
    let _ = writeln!(o, "<g class=\"legend\" font-size=\"11\" fill=\"#3e4c59\">");
    let _ = writeln!(o, "<text x=\"{x:.1}\" y=\"{:.1}\" font-weight=\"bold\">link status</text>", y + 12.0);
    let mut cx = x + 90.0;
    for s in STATUSES {
        let _ = writeln!(
            o,
            "<path d=\"M{cx:.1},{:.1} h34\" stroke=\"{}\" stroke-width=\"2\" marker-end=\"url(#arrow-{})\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 8.0,
            color(s),
            s.word(),
            cx + 42.0,
            y + 12.0,
            s.word()
        );
        cx += 120.0;
    }
    let _ = writeln!(o, "<text x=\"{x:.1}\" y=\"{:.1}\" font-weight=\"bold\">trust domain</text>", y + 36.0);
    let mut cx = x + 90.0;
    for d in [TrustDomain::Cluster, TrustDomain::Etcd, TrustDomain::FrontProxy] {
        let _ = writeln!(
            o,
            "<path d=\"M{cx:.1},{:.1} h40\" stroke=\"#52606d\" stroke-width=\"2\"{}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 32.0,
            dash(d),
            cx + 48.0,
            y + 36.0,
            domain_word(d)
        );
        cx += 150.0;
    }
    let _ = writeln!(o, "</g>");
}
