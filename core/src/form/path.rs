//! Where a value sits in a submission: which instance of each repeat
//! around it. A household roster's member is `[2]`; a child of that
//! member, in a repeat inside the roster, is `[2, 1]`.

use std::fmt;

/// How deep repeats may nest in a form mpaka accepts. Real forms nest two
/// or three deep (a household, its members, each member's illnesses);
/// the bound keeps [`InstancePath`] a small `Copy` value, so every answer
/// of an interview is addressed without an allocation.
pub const MAX_NESTING: usize = 8;

/// The instance of each repeat around a value, outermost first, 0-based:
/// empty at the top of the form. Entries past `depth` are always zero, so
/// equal paths compare and hash equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct InstancePath {
    depth: u8,
    at: [u32; MAX_NESTING],
}

impl InstancePath {
    /// The top of the form.
    pub(crate) const TOP: InstancePath = InstancePath {
        depth: 0,
        at: [0; MAX_NESTING],
    };

    /// How many repeats enclose the value.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.depth)
    }

    /// The instance (0-based) of the `level`-th enclosing repeat.
    pub(crate) fn get(&self, level: usize) -> Option<usize> {
        (level < self.len()).then(|| self.at[level] as usize)
    }

    /// The instance (0-based) of the innermost enclosing repeat.
    pub(crate) fn last(&self) -> Option<usize> {
        self.len().checked_sub(1).and_then(|l| self.get(l))
    }

    /// This path, one repeat deeper, in its instance `index` (0-based);
    /// `None` past [`MAX_NESTING`].
    pub(crate) fn child(&self, index: usize) -> Option<InstancePath> {
        let mut path = *self;
        *path.at.get_mut(self.len())? = u32::try_from(index).ok()?;
        path.depth += 1;
        Some(path)
    }

    /// The first `levels` entries: where an enclosing group or repeat sits.
    pub(crate) fn prefix(&self, levels: usize) -> InstancePath {
        let mut path = *self;
        for entry in path.at.iter_mut().skip(levels) {
            *entry = 0;
        }
        path.depth = self.depth.min(levels as u8);
        path
    }

    /// The same path with instance `index` at `level` (which it has).
    pub(crate) fn with(&self, level: usize, index: usize) -> InstancePath {
        let mut path = *self;
        path.at[level] = index as u32;
        path
    }

    /// The path as apps and messages number instances: from 1.
    pub(crate) fn numbered(&self) -> Vec<usize> {
        self.at[..self.len()].iter().map(|&i| i as usize + 1).collect()
    }
}

impl fmt::Debug for InstancePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &self.at[..self.len()])
    }
}

/// A value's name as messages, [`super::Validation::cleared`] and
/// [`super::Validation::relevant`] write it: `age`, inside a repeat
/// `age[2]`, inside a repeat inside a repeat `age[2][1]` (from 1, outermost
/// first).
pub fn located(name: &str, numbered: &[usize]) -> String {
    let mut out = name.to_owned();
    for n in numbered {
        out.push_str(&format!("[{n}]"));
    }
    out
}

/// The question and instances of a name [`located`] wrote (`age[2][1]`
/// gives `age` and `[2, 1]`).
pub fn split_located(text: &str) -> (&str, Vec<usize>) {
    let (name, rest) = text.split_once('[').map_or((text, ""), |(n, r)| (n, r));
    let numbers = rest
        .trim_end_matches(']')
        .split("][")
        .filter_map(|n| n.parse().ok())
        .collect();
    (name, numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_compare_and_number_from_one() {
        let member = InstancePath::TOP.child(1).expect("room");
        let child = member.child(0).expect("room");
        assert_eq!(child.numbered(), vec![2, 1]);
        assert_eq!(child.prefix(1), member);
        assert_eq!(child.last(), Some(0));
        assert_eq!(child.with(0, 4).numbered(), vec![5, 1]);
        assert_eq!(located("age", &child.numbered()), "age[2][1]");
        assert_eq!(located("age", &[]), "age");
        assert_eq!(split_located("age[2][1]"), ("age", vec![2, 1]));
        assert_eq!(split_located("age"), ("age", vec![]));
        let deepest = (0..MAX_NESTING).try_fold(InstancePath::TOP, |p, i| p.child(i));
        assert!(deepest.is_some_and(|p| p.child(0).is_none()));
    }
}
