//! Points and subtask groups: what a script's tests are worth, and how their results add up to a score.
//!
//! Every test is worth its `points` (1 by default) and earns them in full when OK, a checker's fraction of them
//! when partly right, and nothing otherwise. A group (a subtask) is worth its own points and earns them times the
//! smallest fraction among its tests (CMS's GroupMin): one failed test costs the whole group. A group that depends on
//! another earns nothing unless that one earned all of its points. A test in no group scores on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A non-negative, finite number of points. Finite, so that it compares and hashes as a whole number would.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Points(f64);

impl Eq for Points {}

impl std::hash::Hash for Points {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Points {
    /// No points: what a failed test earns.
    pub const ZERO: Points = Points(0.0);
    /// What a test is worth when its producer says nothing.
    pub const ONE: Points = Points(1.0);
    /// The most a test or a group may be worth: far beyond any scale a contest uses, and small enough that sums of
    /// thousands of them stay exact to the millionth.
    pub const MAX: f64 = 1e9;

    /// # Errors
    /// [`BadPoints`] for a negative, non-finite or larger than [`Points::MAX`] value.
    pub fn new(value: f64) -> Result<Self, BadPoints> {
        if value.is_finite() && (0.0..=Self::MAX).contains(&value) {
            Ok(Points(value + 0.0))
        } else {
            Err(BadPoints(value.to_string()))
        }
    }

    /// The number of points.
    pub fn get(self) -> f64 {
        self.0
    }

    /// `fraction` (from 0 to 1) of these points, rounded to a millionth so that sums of thirds print as a
    /// person would write them.
    pub fn times(self, fraction: f64) -> Points {
        Points::rounded(self.0 * fraction.clamp(0.0, 1.0))
    }

    fn rounded(value: f64) -> Points {
        let rounded = (value * 1e6).round() / 1e6;
        Points(if rounded.is_finite() { rounded.max(0.0) } else { 0.0 })
    }
}

impl std::ops::Add for Points {
    type Output = Points;

    fn add(self, other: Points) -> Points {
        Points::rounded(self.0 + other.0)
    }
}

impl std::iter::Sum for Points {
    fn sum<I: Iterator<Item = Points>>(iter: I) -> Points {
        iter.fold(Points::ZERO, |sum, points| sum + points)
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("points must be a number from 0 to 1e9, got {0}")]
pub struct BadPoints(String);

/// The part of its points a test earned: 1 for OK, a checker's fraction for a partly right answer, else 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Fraction(f64);

impl Eq for Fraction {}

impl Fraction {
    /// Nothing earned.
    pub const NONE: Fraction = Fraction(0.0);
    /// All of the points earned.
    pub const FULL: Fraction = Fraction(1.0);

    /// `value`, held between 0 and 1 (and 0 for a NaN).
    pub fn new(value: f64) -> Self {
        Fraction(if value.is_nan() { 0.0 } else { value.clamp(0.0, 1.0) })
    }

    /// The fraction, from 0 to 1.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A subtask: tests that score together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// The group's `name`, unique in its script; dependencies name it.
    pub name: String,
    /// The `number`s of its tests, in the order given.
    pub tests: Vec<u32>,
    /// What the group is worth.
    pub points: Points,
    /// The names of the groups it needs in full (`depends_on`).
    pub depends_on: Vec<String>,
}

/// A script's groups, checked against its tests: every test named exists and is in one group at most, every
/// dependency is another group of the script, and no dependency leads back to where it started.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Groups(Vec<Group>);

/// Why a script's groups were refused: the RJ result names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("group {0:?} appears twice: group names must be unique")]
    Duplicate(String),
    #[error("a group's name must not be empty")]
    EmptyName,
    #[error("group {group:?} names test {test}, which the script does not have")]
    NoSuchTest { group: String, test: u32 },
    #[error("test {test} is in groups {first:?} and {second:?}: a test is in one group at most")]
    TestInTwo { test: u32, first: String, second: String },
    #[error("group {group:?} depends on {name:?}, which is not a group of the script")]
    UnknownDependency { group: String, name: String },
    #[error("groups depend on each other in a cycle: {0}")]
    Cycle(String),
    #[error("group {0:?} has no tests")]
    Empty(String),
    #[error("group {group:?} names test {test} twice")]
    TestTwice { group: String, test: u32 },
    #[error("two tests have the number {0}: groups name tests by number, so the numbers must differ")]
    RepeatedNumber(u32),
}

impl Groups {
    /// Checks `groups` against the numbers of the script's tests.
    ///
    /// # Errors
    /// [`GroupError`] naming the first rule broken.
    pub fn new(groups: Vec<Group>, tests: &[u32]) -> Result<Self, GroupError> {
        let mut known = BTreeSet::new();
        if !groups.is_empty()
            && let Some(&repeated) = tests.iter().find(|&&number| !known.insert(number))
        {
            return Err(GroupError::RepeatedNumber(repeated));
        }
        let mut names = BTreeSet::new();
        let mut owner: BTreeMap<u32, &str> = BTreeMap::new();
        for group in &groups {
            if group.name.is_empty() {
                return Err(GroupError::EmptyName);
            }
            if !names.insert(group.name.as_str()) {
                return Err(GroupError::Duplicate(group.name.clone()));
            }
            if group.tests.is_empty() {
                return Err(GroupError::Empty(group.name.clone()));
            }
            for &test in &group.tests {
                if !known.contains(&test) {
                    return Err(GroupError::NoSuchTest {
                        group: group.name.clone(),
                        test,
                    });
                }
                if let Some(first) = owner.insert(test, &group.name) {
                    if first == group.name {
                        return Err(GroupError::TestTwice {
                            group: group.name.clone(),
                            test,
                        });
                    }
                    return Err(GroupError::TestInTwo {
                        test,
                        first: first.to_owned(),
                        second: group.name.clone(),
                    });
                }
            }
        }
        for group in &groups {
            if let Some(name) = group.depends_on.iter().find(|name| !names.contains(name.as_str())) {
                return Err(GroupError::UnknownDependency {
                    group: group.name.clone(),
                    name: name.clone(),
                });
            }
        }
        let groups = Groups(groups);
        if let Some(cycle) = groups.cycle() {
            // A cycle through thousands of groups is named by its ends.
            let shown = if cycle.len() > 12 {
                format!(
                    "{} -> … -> {}",
                    cycle[..6].join(" -> "),
                    cycle[cycle.len() - 6..].join(" -> ")
                )
            } else {
                cycle.join(" -> ")
            };
            return Err(GroupError::Cycle(shown));
        }
        Ok(groups)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.0.iter()
    }

    /// The group test `number` is in.
    pub fn of_test(&self, number: u32) -> Option<&Group> {
        self.0.iter().find(|group| group.tests.contains(&number))
    }

    /// The group called `name`.
    pub fn named(&self, name: &str) -> Option<&Group> {
        self.0.iter().find(|group| group.name == name)
    }

    /// The groups `group` needs, directly or through others, itself not included.
    pub fn needs<'a>(&'a self, group: &'a Group) -> Vec<&'a Group> {
        let mut needed: Vec<&Group> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::from([group.name.as_str()]);
        let mut next: Vec<&str> = group.depends_on.iter().map(String::as_str).collect();
        while let Some(name) = next.pop() {
            if !seen.insert(name) {
                continue;
            }
            if let Some(dependency) = self.named(name) {
                needed.push(dependency);
                next.extend(dependency.depends_on.iter().map(String::as_str));
            }
        }
        needed
    }

    /// A path of dependencies that returns to its start, if there is one: a depth-first walk kept on a stack of its
    /// own (a message can hold thousands of groups in a chain, too deep for recursion), linear in the groups and
    /// their dependencies.
    fn cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let index: HashMap<&str, usize> = self.0.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
        let mut marks = vec![Mark::New; self.0.len()];
        for start in 0..self.0.len() {
            if marks[start] != Mark::New {
                continue;
            }
            // Each frame: a group, and how many of its dependencies have been followed.
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Open;
            while let Some(&mut (group, ref mut next)) = path.last_mut() {
                let Some(name) = self.0[group].depends_on.get(*next) else {
                    marks[group] = Mark::Done;
                    path.pop();
                    continue;
                };
                *next += 1;
                let Some(&dependency) = index.get(name.as_str()) else {
                    continue;
                };
                match marks[dependency] {
                    Mark::Done => {}
                    Mark::New => {
                        marks[dependency] = Mark::Open;
                        path.push((dependency, 0));
                    }
                    Mark::Open => {
                        let from = path.iter().position(|&(g, _)| g == dependency).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|&(g, _)| self.0[g].name.clone()).collect();
                        cycle.push(self.0[dependency].name.clone());
                        return Some(cycle);
                    }
                }
            }
        }
        None
    }
}

/// How a group came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResult {
    /// The group's name.
    pub name: String,
    /// OK when it earned all its points; otherwise the first status among its tests that is not OK, or `-` when
    /// its tests were all OK but a group it depends on was not.
    pub status: super::Status,
    /// What it earned.
    pub score: Points,
    /// What it is worth.
    pub max_score: Points,
    /// Why it earned less than its points; empty when it earned them all.
    pub error: String,
}

/// A test's outcome as scoring sees it: its number, status, points and the fraction of them it earned.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// The test's number, by which groups name it.
    pub number: u32,
    /// Its status, `-` when it did not run.
    pub status: super::Status,
    /// What it is worth on its own (a group's points replace it inside the group).
    pub points: Points,
    /// The part of its points it earned.
    pub fraction: Fraction,
}

/// The score of a script: its total, what it was worth, and each group's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Score {
    /// The points earned: the groups' and the tests' in no group.
    pub score: Points,
    /// The points the script is worth.
    pub max_score: Points,
    /// Each group's outcome, in the script's order.
    pub groups: Vec<GroupResult>,
}

/// Adds up `tests` under `groups`. A test missing from `tests` (never run) earns nothing.
pub fn score(groups: &Groups, tests: &[Scored]) -> Score {
    let fraction_of = |number: u32| {
        tests
            .iter()
            .find(|test| test.number == number)
            .map_or(0.0, |test| test.fraction.get())
    };
    // Each group's own fraction first (GroupMin), then dependencies zero whoever needs a group short of full.
    let own: BTreeMap<&str, f64> = groups
        .iter()
        .map(|group| {
            let least = group.tests.iter().map(|&n| fraction_of(n)).fold(1.0f64, f64::min);
            (group.name.as_str(), least)
        })
        .collect();
    let mut results = Vec::new();
    for group in groups.iter() {
        let short: Vec<&str> = groups
            .needs(group)
            .into_iter()
            .filter(|needed| own.get(needed.name.as_str()).copied().unwrap_or(0.0) < 1.0)
            .map(|needed| needed.name.as_str())
            .collect();
        let fraction = if short.is_empty() {
            own.get(group.name.as_str()).copied().unwrap_or(0.0)
        } else {
            0.0
        };
        // In the order the tests ran, so that a test skipped after the group's failure never stands for it.
        let first_failure = tests
            .iter()
            .filter(|test| group.tests.contains(&test.number))
            .map(|test| test.status)
            .find(|&status| status != super::Status::Ok)
            .or_else(|| {
                let missing = group.tests.iter().any(|&n| tests.iter().all(|test| test.number != n));
                missing.then_some(super::Status::NotRun)
            });
        let status = match first_failure {
            Some(status) => status,
            None if short.is_empty() => super::Status::Ok,
            None => super::Status::NotRun,
        };
        let error = if let Some(first) = short.first() {
            format!("depends on group {first:?}, which did not earn all its points")
        } else if fraction < 1.0 {
            "not every test of the group earned all its points".to_owned()
        } else {
            String::new()
        };
        results.push(GroupResult {
            name: group.name.clone(),
            status,
            score: group.points.times(fraction),
            max_score: group.points,
            error,
        });
    }
    let alone = tests.iter().filter(|test| groups.of_test(test.number).is_none());
    let (alone_score, alone_max) = alone.fold((Points::ZERO, Points::ZERO), |(score, max), test| {
        (score + test.points.times(test.fraction.get()), max + test.points)
    });
    Score {
        score: results.iter().map(|group| group.score).sum::<Points>() + alone_score,
        max_score: results.iter().map(|group| group.max_score).sum::<Points>() + alone_max,
        groups: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::testing::fixtures::group;

    fn scored(number: u32, status: Status, fraction: f64) -> Scored {
        Scored {
            number,
            status,
            points: Points::ONE,
            fraction: Fraction::new(fraction),
        }
    }

    #[test]
    fn points_are_finite_and_not_negative() {
        assert!(Points::new(0.0).is_ok());
        assert!(Points::new(2.5).is_ok());
        assert_eq!(
            Points::new(-1.0).unwrap_err().to_string(),
            "points must be a number from 0 to 1e9, got -1"
        );
        assert!(Points::new(1e9).is_ok());
        assert!(Points::new(1e10).is_err(), "a value whose sums lose the millionth");
        assert!(Points::new(f64::INFINITY).is_err());
        assert!(Points::new(f64::NAN).is_err());
        assert_eq!(Points::new(-0.0).unwrap().get().to_bits(), 0f64.to_bits());
        assert_eq!(Points::new(10.0).unwrap().times(1.0 / 3.0).get(), 3.333333);
    }

    #[test]
    fn every_rule_of_groups_is_named() {
        let tests = [1, 2, 3];
        let refused = |groups: Vec<Group>| Groups::new(groups, &tests).unwrap_err().to_string();
        assert_eq!(
            refused(vec![group("a", &[4], 1.0, &[])]),
            "group \"a\" names test 4, which the script does not have"
        );
        assert_eq!(
            refused(vec![group("a", &[1], 1.0, &[]), group("b", &[1, 2], 1.0, &[])]),
            "test 1 is in groups \"a\" and \"b\": a test is in one group at most"
        );
        assert_eq!(
            refused(vec![group("a", &[1], 1.0, &["z"])]),
            "group \"a\" depends on \"z\", which is not a group of the script"
        );
        assert_eq!(
            refused(vec![
                group("a", &[1], 1.0, &["c"]),
                group("b", &[2], 1.0, &["a"]),
                group("c", &[3], 1.0, &["b"])
            ]),
            "groups depend on each other in a cycle: a -> c -> b -> a"
        );
        assert_eq!(
            refused(vec![group("a", &[1], 1.0, &["a"])]),
            "groups depend on each other in a cycle: a -> a"
        );
        assert_eq!(
            refused(vec![group("a", &[1], 1.0, &[]), group("a", &[2], 1.0, &[])]),
            "group \"a\" appears twice: group names must be unique"
        );
        assert_eq!(refused(vec![group("a", &[], 1.0, &[])]), "group \"a\" has no tests");
        assert_eq!(
            refused(vec![group("a", &[1, 1], 1.0, &[])]),
            "group \"a\" names test 1 twice"
        );
        assert_eq!(
            Groups::new(vec![group("a", &[1], 1.0, &[])], &[1, 2, 1])
                .unwrap_err()
                .to_string(),
            "two tests have the number 1: groups name tests by number, so the numbers must differ"
        );
        assert!(
            Groups::new(Vec::new(), &[1, 1]).is_ok(),
            "without groups, numbers are only labels"
        );
        assert!(
            Groups::new(
                vec![group("a", &[1], 1.0, &[]), group("b", &[2, 3], 2.0, &["a"])],
                &tests
            )
            .is_ok()
        );
    }

    #[test]
    fn a_chain_of_twenty_thousand_groups_is_checked_without_recursion() {
        let count = 20_000u32;
        let chain: Vec<Group> = (1..=count)
            .map(|n| {
                let depends_on = if n > 1 { vec![format!("g{}", n - 1)] } else { Vec::new() };
                Group {
                    name: format!("g{n}"),
                    tests: vec![n],
                    points: Points::ONE,
                    depends_on,
                }
            })
            .collect();
        let numbers: Vec<u32> = (1..=count).collect();
        // On a small stack of its own, as a message is read on one of the runtime's threads.
        let checked = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut closed = chain.clone();
                closed[0].depends_on.push(format!("g{count}"));
                let cycle = Groups::new(closed, &numbers).map_err(|e| e.to_string());
                (Groups::new(chain, &numbers).is_ok(), cycle)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            checked,
            (
                true,
                Err("groups depend on each other in a cycle: g1 -> g20000 -> g19999 -> g19998 -> g19997 -> g19996 -> … \
                     -> g6 -> g5 -> g4 -> g3 -> g2 -> g1"
                    .to_owned())
            )
        );
    }

    #[test]
    fn a_group_earns_its_points_times_its_least_test_and_only_with_its_dependencies_full() {
        let groups = Groups::new(
            vec![
                group("easy", &[1, 2], 20.0, &[]),
                group("hard", &[3, 4], 30.0, &["easy"]),
                group("other", &[5], 50.0, &[]),
            ],
            &[1, 2, 3, 4, 5, 6],
        )
        .unwrap();
        let all_ok: Vec<Scored> = (1..=6).map(|n| scored(n, Status::Ok, 1.0)).collect();
        let full = score(&groups, &all_ok);
        assert_eq!((full.score.get(), full.max_score.get()), (101.0, 101.0));
        assert!(full.groups.iter().all(|g| g.status == Status::Ok && g.error.is_empty()));

        // Test 2 fails: "easy" earns nothing, so "hard" earns nothing though its tests passed.
        let mut failed = all_ok.clone();
        failed[1] = scored(2, Status::WrongAnswer, 0.0);
        let result = score(&groups, &failed);
        assert_eq!(result.score.get(), 51.0, "other 50 and test 6 alone");
        assert_eq!(result.groups[0].status, Status::WrongAnswer);
        assert_eq!(result.groups[1].status, Status::NotRun);
        assert_eq!(result.groups[1].score, Points::ZERO);
        assert!(
            result.groups[1].error.contains("\"easy\""),
            "{}",
            result.groups[1].error
        );

        // A partial test gives its group the smallest fraction.
        let mut partial = all_ok.clone();
        partial[4] = scored(5, Status::WrongAnswer, 0.5);
        let result = score(&groups, &partial);
        assert_eq!(result.groups[2].score.get(), 25.0);
        assert_eq!(result.score.get(), 76.0);

        // Tests never run earn nothing.
        let result = score(&groups, &all_ok[..2]);
        assert_eq!(result.score.get(), 20.0);
        assert_eq!(result.max_score.get(), 100.0, "test 6 is not among the results");
    }
}
