//! Headers ahead of their bodies: the branch a headers-first sync checks
//! before it downloads a single body.
//!
//! A [`HeaderBranch`] extends one block of the tree (its base) by headers
//! whose blocks the tree does not hold yet. [`Chain::add_headers`] checks
//! headers a peer sent with every rule a header alone can break, with the
//! same rule functions [`Chain::insert`] uses (`validate.rs`): linkage,
//! height, version, proof of work, the required target (the difficulty
//! rule, retargeting included), the median time and the clock. Only then
//! does the node ask for the bodies, which must match the headers already
//! checked (`validate::check_block`), and only the transactions remain to
//! be checked when a body is inserted.
//!
//! The branch is the most-work header chain the node knows: headers that
//! would make a branch with less work than it are checked and dropped.

use std::collections::{HashMap, VecDeque};

use super::chain::Chain;
use crate::hash::BlockHash;
use crate::header::{HEADER_VERSION, Header};
use crate::pow::Work;
use crate::state::StateMachine;
use crate::validate::{self, ParentContext, ValidationError};

/// Headers checked ahead of their bodies, extending the tree's block
/// [`HeaderBranch::base`].
#[derive(Clone, Debug)]
pub struct HeaderBranch {
    base: BlockHash,
    base_height: u64,
    base_work: Work,
    /// Oldest first: the header, its hash, the branch's work up to it.
    headers: VecDeque<(Header, BlockHash, Work)>,
    /// Hash to height, for the headers above the base.
    index: HashMap<BlockHash, u64>,
}

impl HeaderBranch {
    /// An empty branch at the tree's block `base`.
    fn at(base: BlockHash, base_height: u64, base_work: Work) -> HeaderBranch {
        HeaderBranch {
            base,
            base_height,
            base_work,
            headers: VecDeque::new(),
            index: HashMap::new(),
        }
    }

    /// The tree's block the headers extend.
    pub fn base(&self) -> BlockHash {
        self.base
    }

    /// The base's height.
    pub fn base_height(&self) -> u64 {
        self.base_height
    }

    /// How many headers extend the base.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether no header extends the base.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The last header's hash and height (the base's when empty).
    pub fn tip(&self) -> (BlockHash, u64) {
        self.headers
            .back()
            .map_or((self.base, self.base_height), |(h, hash, _)| {
                (*hash, h.height)
            })
    }

    /// The branch's cumulative work at its tip.
    pub fn tip_work(&self) -> Work {
        self.headers.back().map_or(self.base_work, |e| e.2)
    }

    /// The hash of the branch's header at `height` (above the base).
    pub fn hash_at(&self, height: u64) -> Option<BlockHash> {
        self.entry_at(height).map(|e| e.1)
    }

    /// The branch's header at `height` (above the base).
    pub fn header_at(&self, height: u64) -> Option<Header> {
        self.entry_at(height).map(|e| e.0)
    }

    /// The height of the header `hash`, if the branch holds it above its base.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u64> {
        self.index.get(hash).copied()
    }

    /// Hashes for a `GetHeaders` locator's head: the branch's tip, then
    /// back one apart for ten, then doubling the step, down to (not
    /// including) the base; the caller appends the tree's own locator.
    pub fn locator_head(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let (mut height, mut step) = (self.tip().1, 1u64);
        while height > self.base_height {
            if let Some(hash) = self.hash_at(height) {
                out.push(hash);
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        out
    }

    fn entry_at(&self, height: u64) -> Option<&(Header, BlockHash, Work)> {
        let offset = height.checked_sub(self.base_height.checked_add(1)?)?;
        self.headers.get(usize::try_from(offset).ok()?)
    }

    /// Keeps the first `keep` headers only.
    fn truncate(&mut self, keep: usize) {
        for (_, hash, _) in self.headers.drain(keep.min(self.headers.len())..) {
            self.index.remove(&hash);
        }
    }
}

/// What [`Chain::add_headers`] did with headers that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadersAdded {
    /// They extended the branch at its tip by `added` headers.
    Extended {
        /// New headers.
        added: usize,
    },
    /// They make a branch with more work than the one held, which they
    /// replaced (`added` headers new to the node).
    Switched {
        /// New headers.
        added: usize,
    },
    /// They were all known (blocks the tree holds, or headers of the branch).
    Known,
    /// They make a branch with no more work than the one held: dropped.
    NotBetter,
}

/// Why headers a peer sent were refused (none of them is kept).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadersError {
    /// The first header's parent is neither a block of the tree nor a
    /// header of the branch.
    #[error(
        "the first header's parent {parent} is neither a block we hold nor a header we checked"
    )]
    Unconnected {
        /// The parent named.
        parent: BlockHash,
    },
    /// A header does not name the one before it as its parent.
    #[error(
        "header {position} of the answer ({block}) names {parent} as its parent, not the header before it"
    )]
    NotLinked {
        /// Its position in the answer.
        position: usize,
        /// Its hash.
        block: BlockHash,
        /// The parent it names.
        parent: BlockHash,
    },
    /// A header breaks a rule.
    #[error("the header at height {height} ({block}) breaks a rule: {error}")]
    Invalid {
        /// Its height.
        height: u64,
        /// Its hash.
        block: BlockHash,
        /// The rule.
        error: ValidationError,
    },
    /// A header is of a block already found invalid (or of its descendant).
    #[error("the header at height {height} ({block}) is of a block known to be invalid")]
    KnownInvalid {
        /// Its height.
        height: u64,
        /// Its hash.
        block: BlockHash,
    },
}

impl HeadersError {
    /// Whether the headers can never become valid: every refusal but a
    /// timestamp too far in the future (the sender's clock may be ahead).
    pub fn is_permanent(&self) -> bool {
        match self {
            HeadersError::Invalid { error, .. } => error.is_permanent(),
            _ => true,
        }
    }
}

/// A candidate branch being checked: the held branch's first `prefix`
/// headers, then `new` ones, over the tree's block `base`.
struct Candidate<'a> {
    base: Header,
    held: &'a HeaderBranch,
    prefix: usize,
    new: Vec<(Header, BlockHash, Work)>,
}

impl Candidate<'_> {
    fn base_height(&self) -> u64 {
        self.base.height
    }

    /// The candidate's header at `height`, from `new`, the held prefix, or
    /// (at or below the base) `tree`.
    fn header_at<S: StateMachine>(&self, tree: &Chain<S>, height: u64) -> Option<Header> {
        let above = height.checked_sub(self.base_height() + 1);
        match above.and_then(|a| usize::try_from(a).ok()) {
            Some(a) if a < self.prefix => self.held.headers.get(a).map(|e| e.0),
            Some(a) => self.new.get(a - self.prefix).map(|e| e.0),
            None => tree.ancestor(&self.base, height),
        }
    }

    /// The tip: its header, hash and cumulative work.
    fn tip(&self, base_work: Work) -> (Header, BlockHash, Work) {
        if let Some(last) = self.new.last() {
            return *last;
        }
        match self.prefix.checked_sub(1) {
            Some(i) => self.held.headers[i],
            None => (self.base, self.base.hash(), base_work),
        }
    }
}

impl<S: StateMachine> Chain<S> {
    /// An empty header branch at the best tip.
    pub fn header_branch(&self) -> HeaderBranch {
        HeaderBranch::at(self.tip(), self.height(), self.total_work())
    }

    /// Checks `headers` (consecutive, oldest first) a peer sent, at the
    /// node's time `now_ms`, as a continuation of a block of the tree or
    /// of a header of `branch`, and keeps them in `branch` if they make
    /// it longer or a branch with more work.
    ///
    /// # Errors
    ///
    /// [`HeadersError`]: the first header broken, and how; `branch` is
    /// unchanged.
    pub fn add_headers(
        &self,
        branch: &mut HeaderBranch,
        headers: &[Header],
        now_ms: u64,
    ) -> Result<HeadersAdded, HeadersError> {
        let Some(first) = headers.first() else {
            return Ok(HeadersAdded::Known);
        };
        let parent = first.parent;
        let mut candidate = if let Some(height) = branch.height_of(&parent) {
            Candidate {
                base: self
                    .header(&branch.base)
                    .ok_or(HeadersError::Unconnected { parent })?,
                held: branch,
                prefix: usize::try_from(height - branch.base_height).unwrap_or(usize::MAX),
                new: Vec::new(),
            }
        } else if let Some(base) = self.header(&parent) {
            Candidate {
                base,
                held: branch,
                prefix: 0,
                new: Vec::new(),
            }
        } else {
            return Err(HeadersError::Unconnected { parent });
        };
        let base_work =
            |c: &Candidate<'_>| self.cumulative_work(&c.base.hash()).unwrap_or(Work::ZERO);
        let mut work = base_work(&candidate);
        let mut previous = candidate.tip(work);
        work = previous.2;
        for (position, header) in headers.iter().enumerate() {
            let block = header.hash();
            if header.parent != previous.1 {
                return Err(HeadersError::NotLinked {
                    position,
                    block,
                    parent: header.parent,
                });
            }
            if self.is_known_invalid(&block) {
                return Err(HeadersError::KnownInvalid {
                    height: header.height,
                    block,
                });
            }
            if candidate.new.is_empty() {
                // Still on known ground: a block of the tree moves the base
                // up, a header of the branch the prefix.
                if candidate.prefix == 0 && self.contains(&block) {
                    candidate.base = *header;
                    work = self.cumulative_work(&block).unwrap_or(work);
                    previous = (*header, block, work);
                    continue;
                }
                if candidate.held.hash_at(header.height) == Some(block)
                    && candidate.held.base == candidate.base.hash()
                {
                    candidate.prefix += 1;
                    previous = candidate.held.headers[candidate.prefix - 1];
                    work = previous.2;
                    continue;
                }
            }
            let invalid = |error: ValidationError| HeadersError::Invalid {
                height: header.height,
                block,
                error,
            };
            let context = self.candidate_context(&candidate, &previous.0);
            if header.version != HEADER_VERSION {
                return Err(invalid(ValidationError::UnsupportedVersion {
                    got: header.version,
                    expected: HEADER_VERSION,
                }));
            }
            validate::check_proof_of_work(header, self.params()).map_err(invalid)?;
            validate::check_context(header, &context, now_ms, self.params()).map_err(invalid)?;
            let target = header.target.to_target().map_err(|e| invalid(e.into()))?;
            work = work.saturating_add(target.work());
            previous = (*header, block, work);
            candidate.new.push(previous);
        }
        let added = candidate.new.len();
        if added == 0 {
            return Ok(HeadersAdded::Known);
        }
        let extends = candidate.held.base == candidate.base.hash()
            && candidate.prefix == candidate.held.len();
        if !extends && work <= branch.tip_work() {
            return Ok(HeadersAdded::NotBetter);
        }
        let (base, prefix, new) = (candidate.base, candidate.prefix, candidate.new);
        if branch.base != base.hash() {
            *branch = HeaderBranch::at(
                base.hash(),
                base.height,
                self.cumulative_work(&base.hash()).unwrap_or(Work::ZERO),
            );
        } else {
            branch.truncate(prefix);
        }
        for entry in new {
            branch.index.insert(entry.1, entry.0.height);
            branch.headers.push_back(entry);
        }
        Ok(if extends {
            HeadersAdded::Extended { added }
        } else {
            HeadersAdded::Switched { added }
        })
    }

    /// Brings `branch` up to date with the tree: headers whose blocks the
    /// tree now holds become its base, the whole branch is dropped if its
    /// first header's block was found invalid, and a branch with no more work than the best
    /// chain starts again, empty, at the best tip.
    pub fn settle_branch(&self, branch: &mut HeaderBranch) {
        // Bodies are inserted in height order, so a block found invalid is
        // the branch's first (its descendants go with it).
        if branch
            .headers
            .front()
            .is_some_and(|(_, hash, _)| self.is_known_invalid(hash))
        {
            branch.truncate(0);
        }
        while let Some((header, hash, work)) = branch.headers.front().copied() {
            if !self.contains(&hash) {
                break;
            }
            branch.headers.pop_front();
            branch.index.remove(&hash);
            (branch.base, branch.base_height, branch.base_work) = (hash, header.height, work);
        }
        if branch.tip_work() <= self.total_work() || !self.contains(&branch.base) {
            *branch = self.header_branch();
        }
    }

    /// What `check_context` needs of the candidate's header `parent`.
    fn candidate_context(&self, candidate: &Candidate<'_>, parent: &Header) -> ParentContext {
        let params = self.params();
        let span = params.median_time_span.max(1) as u64;
        let lowest = parent.height.saturating_add(1).saturating_sub(span);
        let timestamps = (lowest..=parent.height)
            .filter_map(|h| candidate.header_at(self, h))
            .map(|h| h.timestamp_ms)
            .collect();
        let first = params
            .retarget
            .filter(|r| r.interval >= 2 && (parent.height + 1).is_multiple_of(r.interval))
            .and_then(|r| candidate.header_at(self, parent.height + 1 - r.interval));
        ParentContext {
            height: parent.height,
            median_time_ms: validate::median_time(timestamps),
            required_target: validate::required_target(params, parent, first.as_ref()),
        }
    }
}
