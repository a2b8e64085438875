//! The guide's chapters: `docs/guide/chapters.toml`, compiled in, lists
//! them in reading order, each with the bundled scenarios that teach its
//! concept (the first one the chapter's main scenario). Chapter NN (from 1)
//! is the file `docs/guide/NN-slug.md`. `asyncsim list` groups the
//! scenarios by chapter; the report links each scenario page, and each
//! chapter of its index, to the chapter's file ([`link`]).

use serde::Deserialize;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// The chapter list, as the repository holds it.
const CHAPTERS: &str = include_str!("../docs/guide/chapters.toml");

/// One chapter of the guide.
#[derive(Debug, Clone, Deserialize)]
pub struct Chapter {
    /// Its file name's stem after the number (`sync-vs-async`).
    pub slug: String,
    /// Its title.
    pub title: String,
    /// The bundled scenarios it runs, the main one first.
    pub scenarios: Vec<String>,
}

impl Chapter {
    /// The chapter's file, from the repository's root, given its number.
    pub fn file(&self, number: usize) -> String {
        format!("docs/guide/{number:02}-{}.md", self.slug)
    }
}

#[derive(Deserialize)]
struct ChapterFile {
    chapter: Vec<Chapter>,
}

/// The guide's chapters, in reading order (chapter `i + 1` at `i`).
pub fn chapters() -> &'static [Chapter] {
    static PARSED: OnceLock<Vec<Chapter>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let file: ChapterFile = toml::from_str(CHAPTERS)
            .unwrap_or_else(|e| panic!("docs/guide/chapters.toml, compiled in, is invalid: {e}"));
        file.chapter
    })
}

/// The chapter that teaches `scenario` (by name): its number and itself.
pub fn chapter_of(scenario: &str) -> Option<(usize, &'static Chapter)> {
    chapters().iter().enumerate().find(|(_, c)| c.scenarios.iter().any(|s| s == scenario)).map(|(i, c)| (i + 1, c))
}

/// The link from a page in the folder `from` to the chapter on `scenario`,
/// whose file `file` came from (a bundled scenario's file sits in the
/// repository's `scenarios/`): relative to `from` when the chapter's file
/// can be found (beside that `scenarios/` folder, or in the checkout this
/// binary was built from), else the path from the repository's root.
pub fn link(scenario: &str, file: &Path, from: &Path) -> Option<reports::html::ChapterLink> {
    let (number, chapter) = chapter_of(scenario)?;
    let path = chapter.file(number);
    let near = std::path::absolute(file).ok().and_then(|f| f.parent()?.parent().map(Path::to_path_buf));
    let roots = near.into_iter().chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))));
    let found = roots.map(|r| r.join(&path)).find(|p| p.is_file());
    let href = found.and_then(|target| relative(from, &target)).unwrap_or(path);
    Some(reports::html::ChapterLink { number, title: chapter.title.clone(), href })
}

/// The path of `target` from the folder `from` (both must exist), with
/// `/` between parts.
fn relative(from: &Path, target: &Path) -> Option<String> {
    let (from, target) = (from.canonicalize().ok()?, target.canonicalize().ok()?);
    let (a, b): (Vec<Component>, Vec<Component>) = (from.components().collect(), target.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return None;
    }
    let ups = std::iter::repeat_n("..".to_string(), a.len() - common);
    let downs = b[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned());
    Some(ups.chain(downs).collect::<Vec<_>>().join("/"))
}
