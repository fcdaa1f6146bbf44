//! The exchange folders shared with the CBS, and the file moves between them.
//!
//! ```text
//! <root>/outbox/<id>.xml          instructions NBK wrote, not yet taken by the CBS
//! <root>/outbox/sent/             instructions the CBS simulator has confirmed
//! <root>/inbox/                   confirmations the CBS wrote, not yet imported
//! <root>/processed/               confirmations imported
//! <root>/rejected/<name>          files refused on import …
//! <root>/rejected/<name>.report.txt   … and why
//! ```
//!
//! Every file is written to a hidden temporary name (`.name.tmp`), synced and
//! renamed, so a reader never sees half a file; readers skip hidden and
//! `.tmp`/`.part` names, and the CBS is expected to do the same. NBK is the
//! only writer of the outbox. A move never overwrites: a second file of the
//! same name gets a `.dupN` suffix.
//!
//! A confirmation file leaves the inbox only after the caller decided about
//! it: to `processed/` once applied, to `rejected/` (with a report) when it is
//! malformed or answers no request of the caller's. A crash before the move
//! leaves the file in the inbox; the caller recognises a confirmation it
//! already applied and accepts it again without applying it twice. One bad or
//! unreadable file never holds back the others.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::CbsError;
use crate::model::{Confirmation, Instruction, malformed};
use crate::{MAX_FILE_BYTES, instruction_xml, parse_confirmation, parse_instruction};

/// Most inbox files one [`Exchange::import`] takes (up to 1 MiB each, all
/// read before any is moved); the rest wait for the next call.
pub const MAX_IMPORT_FILES: usize = 256;
/// Sub-folder of the outbox where sent instructions and the simulator's answers are kept.
pub const SENT_DIR: &str = "sent";
/// Sub-folder of the outbox where the simulator sets aside files it cannot
/// read as instructions, each with a `.report.txt`.
pub const REFUSED_DIR: &str = "refused";

/// Most files with one name kept in a destination folder (`name`, `name.dup1` …).
const MAX_DUPLICATES: usize = 1000;

/// The exchange folders.
#[derive(Debug, Clone)]
pub struct Exchange {
    root: PathBuf,
    outbox: PathBuf,
    inbox: PathBuf,
    processed: PathBuf,
    rejected: PathBuf,
}

/// What one [`Exchange::import`] did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Confirmations read, each with its new path in `processed/`.
    pub imported: Vec<(PathBuf, Confirmation)>,
    /// Files refused, each with its new path in `rejected/` and the reason
    /// (also written next to it as `<name>.report.txt`).
    pub refused: Vec<(PathBuf, String)>,
}

impl Exchange {
    /// Opens the exchange at `root`, creating the folders that are missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Exchange, CbsError> {
        let root = root.into();
        let exchange = Exchange {
            outbox: root.join("outbox"),
            inbox: root.join("inbox"),
            processed: root.join("processed"),
            rejected: root.join("rejected"),
            root,
        };
        for dir in [&exchange.outbox, &exchange.inbox, &exchange.processed, &exchange.rejected] {
            fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        }
        Ok(exchange)
    }

    /// The exchange root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where instructions are written.
    pub fn outbox(&self) -> &Path {
        &self.outbox
    }
    /// Where the CBS puts confirmations.
    pub fn inbox(&self) -> &Path {
        &self.inbox
    }
    /// Where imported confirmations go.
    pub fn processed(&self) -> &Path {
        &self.processed
    }
    /// Where refused files and their reports go.
    pub fn rejected(&self) -> &Path {
        &self.rejected
    }

    /// Writes the instruction to `<outbox>/<id>.xml` (pacs.009.001.08, see
    /// [`instruction_xml`]) after [`Instruction::validate`]. Idempotent: if
    /// the same instruction is already in the outbox, or already sent
    /// (`outbox/sent/`), nothing is written and its path is returned; a
    /// different instruction under the same id is [`CbsError::Conflict`].
    pub fn write_instruction(&self, instruction: &Instruction) -> Result<PathBuf, CbsError> {
        instruction.validate()?;
        let name = format!("{}.xml", instruction.id);
        let bytes = instruction_xml(instruction).into_bytes();
        let path = self.outbox.join(&name);
        for existing in [path.clone(), self.outbox.join(SENT_DIR).join(&name)] {
            match fs::read(&existing) {
                Ok(found) if found == bytes => return Ok(existing),
                Ok(_) => return Err(CbsError::Conflict { id: instruction.id.clone() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io(&existing, source)),
            }
        }
        write_atomically(&path, &bytes)?;
        Ok(path)
    }

    /// Reads the confirmations waiting in the inbox (the first
    /// [`MAX_IMPORT_FILES`] by name) without moving any: the caller decides
    /// about each, applies it, and only then moves it with
    /// [`Exchange::accept`] or [`Exchange::refuse`] — so a crash in between
    /// leaves the file in the inbox, to be read again.
    pub fn read_inbox(&self) -> Result<Vec<InboxFile>, CbsError> {
        let mut files = Vec::new();
        for path in list_files(&self.inbox)?.into_iter().take(MAX_IMPORT_FILES) {
            let confirmation = match read_bounded(&path) {
                Ok(bytes) => bytes.and_then(|bytes| parse_confirmation(&bytes)).map_err(|error| match error {
                    CbsError::Malformed { what } => what,
                    other => other.to_string(),
                }),
                // Unreadable now (permissions, a vanished file): left where it
                // is, the others go on.
                Err(error) => {
                    files.push(InboxFile { path, confirmation: Err(error.to_string()), readable: false });
                    continue;
                }
            };
            files.push(InboxFile { path, confirmation, readable: true });
        }
        Ok(files)
    }

    /// Moves an inbox file whose confirmation was applied to `processed/`.
    pub fn accept(&self, file: &InboxFile) -> Result<PathBuf, CbsError> {
        move_into(&file.path, &self.processed)
    }

    /// Moves an inbox file to `rejected/` with `<name>.report.txt` saying why.
    pub fn refuse(&self, file: &InboxFile, reason: &str) -> Result<PathBuf, CbsError> {
        let moved = move_into(&file.path, &self.rejected)?;
        write_refusal_report(&file.path, &moved, reason)?;
        Ok(moved)
    }

    /// Reads the inbox and settles every file at once: a malformed one, or
    /// one `decide` refuses (with the reason for the report), goes to
    /// `rejected/`; the others to `processed/`. For callers that apply a
    /// confirmation before `decide` returns; the NBK node, which journals
    /// first, uses [`Exchange::read_inbox`] and moves each file itself.
    pub fn import(
        &self,
        mut decide: impl FnMut(&Confirmation) -> Result<(), String>,
    ) -> Result<ImportReport, CbsError> {
        let mut report = ImportReport::default();
        for file in self.read_inbox()? {
            if !file.readable {
                continue;
            }
            match file.confirmation.as_ref().map_err(String::clone).and_then(|c| decide(c).map(|()| c)) {
                Ok(confirmation) => report.imported.push((self.accept(&file)?, confirmation.clone())),
                Err(reason) => report.refused.push((self.refuse(&file, &reason)?, reason)),
            }
        }
        Ok(report)
    }

    /// The instructions in the outbox (not those already sent), by file name.
    /// A file there that does not parse is an error: only NBK writes there.
    pub fn pending_instructions(&self) -> Result<Vec<Instruction>, CbsError> {
        let files = read_instruction_files(&self.outbox)?;
        Ok(files.into_iter().map(|(_, instruction)| instruction).collect())
    }
}

/// One file found in the inbox by [`Exchange::read_inbox`].
#[derive(Debug)]
pub struct InboxFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its confirmation, or why it is not one (malformed, too large,
    /// unreadable).
    pub confirmation: Result<Confirmation, String>,
    /// False when the file could not be read now: it stays in the inbox.
    pub readable: bool,
}

/// Parses every instruction file in `dir`, by file name.
pub(crate) fn read_instruction_files(dir: &Path) -> Result<Vec<(PathBuf, Instruction)>, CbsError> {
    let mut instructions = Vec::new();
    for path in list_files(dir)? {
        let bytes = read_bounded(&path)?;
        let instruction = bytes.and_then(|bytes| parse_instruction(&bytes)).map_err(|e| in_file(&path, e))?;
        instructions.push((path, instruction));
    }
    Ok(instructions)
}

fn in_file(path: &Path, error: CbsError) -> CbsError {
    match error {
        CbsError::Malformed { what } => malformed(format!("{}: {what}", path.display())),
        other => other,
    }
}

pub(crate) fn io(path: &Path, source: std::io::Error) -> CbsError {
    CbsError::Io { path: path.to_path_buf(), source }
}

/// Regular files in `dir`, sorted by name, without hidden or temporary ones.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>, CbsError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|source| io(dir, source))? {
        let entry = entry.map_err(|source| io(dir, source))?;
        let file_type = entry.file_type().map_err(|source| io(&entry.path(), source))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let in_progress = name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part");
        if file_type.is_file() && !in_progress {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The file's bytes, or `Ok(Err(Malformed))` when it is larger than
/// [`MAX_FILE_BYTES`] (it is not read whole then).
pub(crate) fn read_bounded(path: &Path) -> Result<Result<Vec<u8>, CbsError>, CbsError> {
    let file = fs::File::open(path).map_err(|source| io(path, source))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut bytes).map_err(|source| io(path, source))?;
    if bytes.len() > MAX_FILE_BYTES {
        let size = fs::metadata(path).map(|m| m.len()).unwrap_or(limit);
        return Ok(Err(malformed(format!("the file is {size} bytes, more than the {MAX_FILE_BYTES}-byte limit"))));
    }
    Ok(Ok(bytes))
}

/// Writes `bytes` to `path` through a synced hidden temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CbsError> {
    let dir = path.parent().ok_or_else(|| malformed(format!("{} has no folder", path.display())))?;
    let name = path.file_name().ok_or_else(|| malformed(format!("{} has no file name", path.display())))?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file = fs::File::create(&temporary).map_err(|source| io(&temporary, source))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|source| io(&temporary, source))?;
    drop(file);
    fs::rename(&temporary, path).map_err(|source| io(path, source))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), CbsError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| io(dir, source))
}

/// Moves `path` into `dir` under its own name, or `name.dupN` if taken.
pub(crate) fn move_into(path: &Path, dir: &Path) -> Result<PathBuf, CbsError> {
    let name = path.file_name().ok_or_else(|| malformed(format!("{} has no file name", path.display())))?;
    let name = name.to_string_lossy();
    let mut destination = dir.join(name.as_ref());
    let mut n = 0;
    while destination.exists() {
        n += 1;
        if n > MAX_DUPLICATES {
            return Err(malformed(format!("{} already holds {MAX_DUPLICATES} files named {name}", dir.display())));
        }
        destination = dir.join(format!("{name}.dup{n}"));
    }
    fs::rename(path, &destination).map_err(|source| io(path, source))?;
    sync_dir(dir)?;
    Ok(destination)
}

fn write_refusal_report(original: &Path, moved: &Path, reason: &str) -> Result<(), CbsError> {
    let report_path = PathBuf::from(format!("{}.report.txt", moved.display()));
    let text = format!(
        "Refused CBS confirmation file\n\
         file:     {}\n\
         moved to: {}\n\
         reason:   {reason}\n\n\
         Nothing was imported from this file and no DT was issued or destroyed because of it.\n\
         Ask the CBS to send a corrected pacs.002.001.10 confirmation into the inbox.\n",
        original.display(),
        moved.display(),
    );
    write_atomically(&report_path, text.as_bytes())
}
