//! The transport's fault layer between processes: links cut by a file.
//!
//! A test harness (`dtenge chaos`) partitions services that run as separate
//! processes by writing a [`CutLinks`] file they all read; an [`HttpBus`]
//! given one refuses to call across a cut link (`Unreachable`, nothing
//! sent). Cutting both directions needs nothing more: every message between
//! services is a call by its sender, so a link whose two ends both refuse to
//! call is partitioned, while each end still answers everyone else. Removing
//! the line (or the file) heals it.
//!
//! File format: one cut link per line, two participant ids separated by
//! whitespace; `#` starts a comment. A missing file cuts nothing.
//!
//! Invariant: the file is read again at most every [`CutLinks::REREAD`], so a cut
//! takes effect (and heals) within that delay; a file that cannot be parsed
//! cuts nothing and is reported once per change.
//!
//! [`HttpBus`]: crate::HttpBus

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use dtenge_types::ParticipantId;

/// Most lines a cut file may hold (a partition of a few services).
pub const MAX_CUT_LINES: usize = 1_000;

/// The links cut by a file (see the module docs).
#[derive(Debug)]
pub struct CutLinks {
    path: PathBuf,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    checked: Option<Instant>,
    /// The file's modification time and length when last read.
    modified: Option<(SystemTime, u64)>,
    links: BTreeSet<(ParticipantId, ParticipantId)>,
}

fn link(a: &ParticipantId, b: &ParticipantId) -> (ParticipantId, ParticipantId) {
    if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }
}

impl CutLinks {
    /// How often the file is looked at again.
    pub const REREAD: Duration = Duration::from_millis(50);

    /// Links cut by the file at `path` (which need not exist yet).
    pub fn new(path: &Path) -> CutLinks {
        CutLinks { path: path.to_path_buf(), seen: Mutex::default() }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the link between `a` and `b` is cut now.
    pub fn is_cut(&self, a: &ParticipantId, b: &ParticipantId) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.checked.is_none_or(|at| at.elapsed() >= Self::REREAD) {
            seen.checked = Some(Instant::now());
            let modified = std::fs::metadata(&self.path).and_then(|m| Ok((m.modified()?, m.len()))).ok();
            if modified != seen.modified {
                seen.modified = modified;
                seen.links = match modified.map(|_| std::fs::read_to_string(&self.path)) {
                    None => BTreeSet::new(),
                    Some(Ok(text)) => Self::parse(&text).unwrap_or_else(|e| {
                        tracing::warn!(file = %self.path.display(), "cut links ignored: {e}");
                        BTreeSet::new()
                    }),
                    Some(Err(e)) => {
                        tracing::warn!(file = %self.path.display(), "cut links unreadable: {e}");
                        BTreeSet::new()
                    }
                };
            }
        }
        seen.links.contains(&link(a, b))
    }

    /// The links in `text` (see the module docs).
    ///
    /// # Errors
    /// A line is not two participant ids, or there are too many lines.
    pub fn parse(text: &str) -> Result<BTreeSet<(ParticipantId, ParticipantId)>, String> {
        let mut links = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if n >= MAX_CUT_LINES {
                return Err(format!("more than {MAX_CUT_LINES} lines"));
            }
            let ends: Vec<&str> = line.split_whitespace().collect();
            let [a, b] = ends.as_slice() else {
                return Err(format!("line {}: `{line}` is not two participant ids", n + 1));
            };
            let id = |s: &str| ParticipantId::new(s).map_err(|e| format!("line {}: {s}: {e}", n + 1));
            links.insert(link(&id(a)?, &id(b)?));
        }
        Ok(links)
    }

    /// Writes `links` as the cut file at `path` (replacing it whole, so a
    /// reader never sees half of it).
    ///
    /// # Errors
    /// The file could not be written.
    pub fn write(path: &Path, links: &[(ParticipantId, ParticipantId)]) -> std::io::Result<()> {
        let text: String = links.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    #[test]
    fn a_written_cut_is_seen_both_ways_and_heals_when_removed() {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("dtenge-cuts-{}-{nanos}", std::process::id()));
        let cuts = CutLinks::new(&path);
        assert!(!cuts.is_cut(&id("NOTARY-1"), &id("NOTARY-2")), "no file: nothing cut");
        CutLinks::write(&path, &[(id("NOTARY-2"), id("NOTARY-1"))]).unwrap();
        std::thread::sleep(CutLinks::REREAD * 2);
        assert!(cuts.is_cut(&id("NOTARY-1"), &id("NOTARY-2")));
        assert!(cuts.is_cut(&id("NOTARY-2"), &id("NOTARY-1")));
        assert!(!cuts.is_cut(&id("NOTARY-1"), &id("NOTARY-3")), "only the link named");
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(CutLinks::REREAD * 2);
        assert!(!cuts.is_cut(&id("NOTARY-1"), &id("NOTARY-2")), "healed");
    }

    #[test]
    fn a_malformed_line_is_named() {
        let e = CutLinks::parse("NOTARY-1 NOTARY-2\nNOTARY-3\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("NOTARY-3"), "{e}");
        assert_eq!(CutLinks::parse("# none\n\n").unwrap().len(), 0);
    }
}
