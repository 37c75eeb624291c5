//! The content-addressed artifact cache (`RUNNER_ARTIFACT_CACHE_BYTES`, 0 turns it off): each distinct program is
//! compiled once per runner instance. Students resubmit the same code ("Run", then "Submit"; a class's starter
//! code), and SCRC's simulator sends the same programs on every iteration.
//!
//! The key is a SHA-256 of everything that determines what a build gives: the language, the build image's id (so a
//! rebuilt image never serves an old compiler's output), the build command and environment, the source file's name
//! and the source bytes. The value is the built program tree, or a build failure whose cause is the source itself
//! (the compiler exited with an error): the same diagnostics come back as BF. Failures at a compile limit, by a
//! signal or with too much output are not kept, since load or chance can cause them.
//!
//! Entries live in a directory of the runner's own (mode 0700, emptied when the cache opens), never mounted into
//! a sandbox, so no program can write them; each is checked against the SHA-256 of its contents when it is read,
//! and a mismatch is dropped as a miss. The cache is bounded by the bytes of its entries and evicts the least
//! recently used. It is per runner instance: instances of a group each compile a program once.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::lock;
use super::protocol::Entry;
use crate::ports::BuildFailure;

/// What a build gave, as kept in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The program directory's tree, parents before children.
    Program(Vec<Entry>),
    /// A build the compiler refused.
    Failed(BuildFailure),
}

/// The SHA-256 naming one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of a build: every part is length-prefixed, so that no two different builds share a byte stream.
    pub fn of(language: &str, build_image_id: &str, command: &[String], env: &[String], sources: &[Entry]) -> Self {
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        part(b"scrc-artifact-key 1");
        part(language.as_bytes());
        part(build_image_id.as_bytes());
        part(&(command.len() as u64).to_le_bytes());
        command.iter().for_each(|arg| part(arg.as_bytes()));
        part(&(env.len() as u64).to_le_bytes());
        env.iter().for_each(|var| part(var.as_bytes()));
        // Every file's path, mode and bytes, and every directory's path and mode, each marked as which it is; not
        // their times, which are the build's.
        part(&(sources.len() as u64).to_le_bytes());
        for entry in sources {
            part(entry.path.as_bytes());
            part(&entry.mode.to_le_bytes());
            match &entry.contents {
                Some(contents) => {
                    part(b"file");
                    part(contents);
                }
                None => part(b"directory"),
            }
        }
        Self(hash.finalize().into())
    }

    fn file_name(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Counters since the cache opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache: builds not run again.
    pub hits: u64,
    /// Lookups that found nothing usable, so the program was built (rejected entries count here too).
    pub misses: u64,
    /// Builds written to the cache.
    pub stored: u64,
    /// Entries dropped, least recently used first, to stay within the capacity.
    pub evicted: u64,
    /// Entries whose contents no longer matched their hash, or could not be read.
    pub rejected: u64,
}

pub struct ArtifactCache {
    /// The runner's own directory of entries (mode 0700, never mounted in a sandbox), removed when the cache drops.
    dir: PathBuf,
    /// The most bytes of entries kept (`RUNNER_ARTIFACT_CACHE_BYTES`).
    capacity: u64,
    /// Which keys are stored, with their hashes, sizes and last use; the lock is never held across I/O.
    index: Mutex<Index>,
    /// Counted for [`CacheStats::hits`].
    hits: AtomicU64,
    /// Counted for [`CacheStats::misses`].
    misses: AtomicU64,
    /// Counted for [`CacheStats::stored`].
    stored: AtomicU64,
    /// Counted for [`CacheStats::evicted`].
    evicted: AtomicU64,
    /// Counted for [`CacheStats::rejected`].
    rejected: AtomicU64,
}

#[derive(Default)]
struct Index {
    /// Every entry on disk by its key: a key is stored if and only if it is here.
    slots: HashMap<Key, Slot>,
    /// The bytes of all entries, kept at most the capacity by eviction.
    used: u64,
    /// Ticks once per lookup or store, so that `last_used` orders entries by recency without reading the time.
    clock: u64,
}

struct Slot {
    /// The SHA-256 of the entry's file, checked on every read so that a changed or damaged file is dropped as a miss.
    digest: [u8; 32],
    /// The size of the entry's file, counted against the capacity.
    bytes: u64,
    /// The index's clock when the entry was last stored or read; the smallest is evicted first.
    last_used: u64,
}

impl ArtifactCache {
    /// Opens an empty cache of at most `capacity` bytes in `dir`, which it creates (mode 0700) or empties.
    ///
    /// # Errors
    /// The I/O error when the directory cannot be made.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<Self> {
        match std::fs::remove_dir_all(dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            capacity,
            index: Mutex::new(Index::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// The build kept under `key`, checked against its hash, or `None`.
    pub async fn get(&self, key: &Key) -> Option<Cached> {
        let digest = {
            let mut index = lock(&self.index);
            index.clock += 1;
            let clock = index.clock;
            index.slots.get_mut(key).map(|slot| {
                slot.last_used = clock;
                slot.digest
            })
        };
        let Some(digest) = digest else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let path = self.dir.join(key.file_name());
        let cached = match tokio::fs::read(&path).await {
            Ok(bytes) if <[u8; 32]>::from(Sha256::digest(&bytes)) == digest => decode(&bytes),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot read a cached artifact");
                None
            }
        };
        match cached {
            Some(cached) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(cached)
            }
            None => {
                tracing::warn!(path = %path.display(), "a cached artifact does not match its hash; dropped");
                self.rejected.fetch_add(1, Ordering::Relaxed);
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.forget(key);
                None
            }
        }
    }

    /// Keeps a build under `key`, evicting the least recently used entries to stay within the capacity. A value
    /// larger than the whole cache is not kept. A write that fails only costs the cache that entry.
    pub async fn put(&self, key: Key, cached: &Cached) {
        let bytes = encode(cached);
        let size = bytes.len() as u64;
        if size > self.capacity || lock(&self.index).slots.contains_key(&key) {
            return;
        }
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let path = self.dir.join(key.file_name());
        // Written aside and renamed, so that a reader never sees half an entry.
        let partial = self.dir.join(format!("{}.partial", key.file_name()));
        let written = async {
            tokio::fs::write(&partial, &bytes).await?;
            tokio::fs::rename(&partial, &path).await
        };
        if let Err(error) = written.await {
            tracing::warn!(%error, path = %path.display(), "cannot store a built program in the artifact cache");
            let _ = tokio::fs::remove_file(&partial).await;
            return;
        }
        let evicted = {
            let mut index = lock(&self.index);
            index.clock += 1;
            let last_used = index.clock;
            if let Some(old) = index.slots.insert(
                key,
                Slot {
                    digest,
                    bytes: size,
                    last_used,
                },
            ) {
                index.used -= old.bytes;
            }
            index.used += size;
            index.evict_to(self.capacity)
        };
        self.stored.fetch_add(1, Ordering::Relaxed);
        self.evicted.fetch_add(evicted.len() as u64, Ordering::Relaxed);
        for key in evicted {
            let _ = tokio::fs::remove_file(self.dir.join(key.file_name())).await;
        }
    }

    fn forget(&self, key: &Key) {
        let mut index = lock(&self.index);
        if let Some(slot) = index.slots.remove(key) {
            index.used -= slot.bytes;
        }
        let path = self.dir.join(key.file_name());
        drop(index);
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for ArtifactCache {
    /// The entries are worth nothing to another process: a runner that stops takes them along.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Index {
    /// Drops least recently used entries until at most `capacity` bytes are kept; returns their keys.
    fn evict_to(&mut self, capacity: u64) -> Vec<Key> {
        let mut evicted = Vec::new();
        while self.used > capacity {
            let Some(oldest) = self
                .slots
                .iter()
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(key, _)| *key)
            else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.used -= slot.bytes;
            }
            evicted.push(oldest);
        }
        evicted
    }
}

const MAGIC: &[u8] = b"scrc-artifact 1\n";

/// The stored form: the magic, then `P` and the entries of a program, or `B` and a failure's reason and
/// diagnostics; numbers little-endian, byte strings length-prefixed.
pub(super) fn encode(cached: &Cached) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let chunk = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    match cached {
        Cached::Program(entries) => {
            out.push(b'P');
            for entry in entries {
                out.push(if entry.contents.is_some() { b'f' } else { b'd' });
                out.extend_from_slice(&entry.mode.to_le_bytes());
                out.extend_from_slice(&entry.mtime.to_le_bytes());
                chunk(&mut out, entry.path.as_bytes());
                if let Some(contents) = &entry.contents {
                    chunk(&mut out, contents);
                }
            }
        }
        Cached::Failed(failure) => {
            out.push(b'B');
            chunk(&mut out, failure.reason.as_bytes());
            chunk(&mut out, &failure.diagnostics);
        }
    }
    out
}

pub(super) fn decode(bytes: &[u8]) -> Option<Cached> {
    let mut reader = Reader(bytes.strip_prefix(MAGIC)?);
    match reader.take(1)?[0] {
        b'P' => {
            let mut entries = Vec::new();
            while let Some(kind) = reader.take(1) {
                let mode = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
                let mtime = i64::from_le_bytes(reader.take(8)?.try_into().ok()?);
                let path = String::from_utf8(reader.chunk()?.to_vec()).ok()?;
                let contents = match kind[0] {
                    b'd' => None,
                    b'f' => Some(reader.chunk()?.to_vec()),
                    _ => return None,
                };
                entries.push(Entry {
                    path,
                    mode,
                    mtime,
                    contents,
                });
            }
            Some(Cached::Program(entries))
        }
        b'B' => {
            let reason = String::from_utf8(reader.chunk()?.to_vec()).ok()?;
            let diagnostics = reader.chunk()?.to_vec();
            reader
                .0
                .is_empty()
                .then_some(Cached::Failed(BuildFailure { diagnostics, reason }))
        }
        _ => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    /// A `u64` length and that many bytes.
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let length = usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()?;
        self.take(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(contents: &[u8]) -> Cached {
        Cached::Program(vec![
            Entry {
                path: "pkg".into(),
                mode: 0o755,
                mtime: 1,
                contents: None,
            },
            Entry {
                path: "pkg/Main.class".into(),
                mode: 0o644,
                mtime: -7,
                contents: Some(contents.to_vec()),
            },
        ])
    }

    fn failed() -> Cached {
        Cached::Failed(BuildFailure {
            diagnostics: b"main.c:1: error".to_vec(),
            reason: "compilation failed with exit code 1".into(),
        })
    }

    fn file(path: &str, contents: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o444,
            mtime: 1,
            contents: Some(contents.to_vec()),
        }
    }

    fn key(source: &str) -> Key {
        Key::of(
            "c",
            "sha256:aa",
            &["gcc".into()],
            &["HOME=/tmp".into()],
            &[file("main.c", source.as_bytes())],
        )
    }

    fn cache(capacity: u64) -> (ArtifactCache, PathBuf) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scrc-artifacts-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        (ArtifactCache::open(&dir, capacity).expect("open"), dir)
    }

    #[test]
    fn entries_survive_encoding_and_damage_is_refused() {
        for cached in [
            program(b"\0\xca\xfe"),
            program(b""),
            failed(),
            Cached::Program(Vec::new()),
        ] {
            let bytes = encode(&cached);
            assert_eq!(decode(&bytes), Some(cached));
            for cut in 0..bytes.len() {
                let decoded = decode(&bytes[..cut]);
                assert!(
                    decoded.is_none() || matches!(decoded, Some(Cached::Program(_))),
                    "cut at {cut}"
                );
            }
        }
        assert_eq!(decode(b"scrc-artifact 2\nP"), None, "another format");
    }

    #[test]
    fn every_part_of_a_build_changes_its_key() {
        let base = key("int main(){}");
        assert_eq!(base, key("int main(){}"));
        assert_ne!(base, key("int main(){ }"));
        let command = ["gcc".to_owned()];
        let env = ["HOME=/tmp".to_owned()];
        let source = [file("main.c", b"int main(){}")];
        assert_ne!(base, Key::of("cpp", "sha256:aa", &command, &env, &source));
        assert_ne!(base, Key::of("c", "sha256:ab", &command, &env, &source));
        assert_ne!(
            base,
            Key::of("c", "sha256:aa", &["gcc".into(), "-O2".into()], &env, &source)
        );
        assert_ne!(base, Key::of("c", "sha256:aa", &command, &[], &source));
        assert_ne!(
            base,
            Key::of("c", "sha256:aa", &command, &env, &[file("prog.c", b"int main(){}")])
        );
        let with_header = [file("main.c", b"int main(){}"), file("util.h", b"int f(void);")];
        assert_ne!(
            base,
            Key::of("c", "sha256:aa", &command, &env, &with_header),
            "every file counts"
        );
        let later = [Entry {
            mtime: 2,
            ..file("main.c", b"int main(){}")
        }];
        assert_eq!(base, Key::of("c", "sha256:aa", &command, &env, &later), "times do not");
        let directory = Entry {
            path: "lib".into(),
            mode: 0o444,
            mtime: 1,
            contents: None,
        };
        assert_ne!(
            Key::of("c", "x", &command, &env, &[directory]),
            Key::of("c", "x", &command, &env, &[file("lib", b"/")]),
            "a directory is not a file"
        );
        assert_ne!(
            Key::of("c", "x", &["a".into(), "b".into()], &[], &[]),
            Key::of("c", "x", &["ab".into()], &[], &[]),
            "arguments are not concatenated"
        );
    }

    #[tokio::test]
    async fn a_kept_build_comes_back_and_counts_as_a_hit() {
        let (cache, dir) = cache(1 << 20);
        assert_eq!(cache.get(&key("a")).await, None);
        cache.put(key("a"), &program(b"binary")).await;
        cache.put(key("b"), &failed()).await;
        assert_eq!(cache.get(&key("a")).await, Some(program(b"binary")));
        assert_eq!(cache.get(&key("b")).await, Some(failed()));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.stored), (2, 1, 2));
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[tokio::test]
    async fn the_least_recently_used_entries_go_first_and_the_bytes_stay_bounded() {
        let one = encode(&program(&[7; 1000])).len() as u64;
        let (cache, dir) = cache(3 * one);
        for name in ["a", "b", "c"] {
            cache.put(key(name), &program(&[7; 1000])).await;
        }
        assert!(cache.get(&key("a")).await.is_some(), "a is now the most recently used");
        cache.put(key("d"), &program(&[7; 1000])).await;
        assert_eq!(cache.get(&key("b")).await, None, "b was the least recently used");
        for name in ["a", "c", "d"] {
            assert!(cache.get(&key(name)).await.is_some(), "{name} stays");
        }
        assert_eq!(cache.stats().evicted, 1);
        let files = std::fs::read_dir(&dir).expect("read the cache").count();
        assert_eq!(files, 3, "the evicted entry's file is removed");
        cache.put(key("huge"), &program(&[7; 5000])).await;
        assert_eq!(
            cache.get(&key("huge")).await,
            None,
            "larger than the whole cache: not kept"
        );
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[tokio::test]
    async fn an_entry_changed_on_disk_is_dropped_as_a_miss() {
        let (cache, dir) = cache(1 << 20);
        cache.put(key("a"), &program(b"binary")).await;
        let path = dir.join(key("a").file_name());
        let mut bytes = std::fs::read(&path).expect("read the entry");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("damage the entry");
        assert_eq!(cache.get(&key("a")).await, None);
        assert_eq!(cache.stats().rejected, 1);
        assert!(!path.exists(), "the damaged entry is removed");
        cache.put(key("a"), &program(b"binary")).await;
        assert_eq!(
            cache.get(&key("a")).await,
            Some(program(b"binary")),
            "and can be kept again"
        );
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[test]
    fn opening_empties_what_an_earlier_run_left() {
        let (earlier, dir) = cache(1);
        std::fs::write(dir.join("stale"), b"x").expect("write");
        let cache = ArtifactCache::open(&dir, 1).expect("reopen");
        assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 0);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::mem::forget(earlier);
        drop(cache);
        assert!(!dir.exists(), "a cache dropped takes its entries along");
    }
}
