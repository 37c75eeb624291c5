//! The frames the runner and the supervisor (`scrc-guard --serve`, see `guard/main.c`) exchange over a container's
//! attached stdin and stdout. Pure encoding and decoding, so that every byte layout is tested here and the I/O in
//! [`super::server`] stays a loop. The tests hold both sides to the same golden frames in `guard/fixtures`: every
//! request encoded here, and every reply the supervisor's own C tests encode, is a fixture byte for byte.
//!
//! A frame is one op byte, a little-endian `u32` payload length, and the payload. Requests: `W` wipe, `F` write a
//! file, `D` make a directory, `K` keep a tree's modes and times, `G` gather a tree, `X` run a test. Replies: `H`
//! hello, `R` a test's report and output, `A` a gathered tree.

use serde::Deserialize;

use super::outcome::MemoryAtTimeout;

/// The header of every frame: the op and the payload length.
pub const HEADER: usize = 5;

const MIB: usize = 1024 * 1024;

/// The largest artifact limit (`RUNNER_ARTIFACT_LIMIT`) a gather may ask for. The supervisor counts every byte of
/// the tree it sends (contents, names and metadata) against the limit it is given, so a gathered tree is never
/// larger than its reply allows.
pub const MAX_ARTIFACT_LIMIT: usize = 64 * MIB;

/// The largest output limit (`RUNNER_OUTPUT_LIMIT`): a test's report carries both of its streams, each up to it.
pub const MAX_OUTPUT_LIMIT: usize = 32 * MIB;

/// Room in a reply beyond a tree or two streams: the errno, the lengths, and the report's JSON (under 1 KiB).
const REPLY_SLACK: usize = 64 * 1024;

/// The largest reply the runner accepts. A larger one means the stream is out of step, which no program can cause:
/// the largest limits the configuration allows still give replies within it.
pub const REPLY_LIMIT: usize = MAX_ARTIFACT_LIMIT + REPLY_SLACK;

const _: () = assert!(2 * MAX_OUTPUT_LIMIT + REPLY_SLACK <= REPLY_LIMIT);

/// The errno of a gather whose tree goes past its byte limit.
pub const EFBIG: i32 = 27;

/// A file to put into a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File<'a> {
    /// Absolute, inside a writable directory of the sandbox.
    pub path: &'a str,
    /// The file's permission bits: a source is put read-only (0444).
    pub mode: u32,
    /// Seconds since the epoch; Python checks its bytecode cache against the source's.
    pub mtime: i64,
    /// The file's bytes.
    pub contents: &'a [u8],
}

/// One entry of a program tree gathered from a sandbox: a directory, or a file with its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the gathered directory; parents come before their children.
    pub path: String,
    /// The permission bits, put back when the tree is written into another sandbox.
    pub mode: u32,
    /// The modification time in seconds since the epoch, kept so that bytecode caches still match their sources.
    pub mtime: i64,
    /// `None` for a directory.
    pub contents: Option<Vec<u8>>,
}

/// What a test asks the supervisor to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec<'a> {
    /// The test's wall-clock limit in milliseconds; the supervisor kills everything at it.
    pub limit_ms: u32,
    /// Bytes kept per stream (`RUNNER_OUTPUT_LIMIT`); the supervisor kills the test at one more.
    pub output_limit: u32,
    /// The program's working directory (the language's `*_WORKDIR`).
    pub workdir: &'a str,
    /// The program's command line, run by the supervisor without a shell.
    pub argv: &'a [String],
    /// The program's environment, set by the supervisor for this test only.
    pub env: &'a [String],
    /// The test's input, fed to the program on stdin.
    pub stdin: &'a [u8],
    /// Let the test write only to the supervisor's writable directories (and `/dev`), so that a program directory
    /// mounted writable for the build is read-only to the tests.
    pub seal: bool,
    /// Put the supervisor's strict syscall filter (`guard/filter.c`) over the run, on top of the engine's profile
    /// (`RUNNER_SECCOMP=strict`).
    pub strict: bool,
    /// The CPU time every process of the run may use together, in milliseconds; 0 for none.
    pub cpu_limit_ms: u32,
    /// The absolute path of the file the program's output is read from after the run, instead of its stdout.
    pub output_file: Option<&'a str>,
}

/// What the supervisor says of itself when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The kernel's Landlock ABI version, 0 without Landlock; sealing needs 3 (truncation is restricted from 3).
    pub landlock: u32,
}

impl Hello {
    pub fn can_seal(self) -> bool {
        self.landlock >= 3
    }
}

/// The supervisor's account of one test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServedReport {
    /// Non-zero when the sandbox could not be prepared (a wipe or a put failed); nothing ran.
    #[serde(default)]
    pub setup_errno: i32,
    /// The program's exit code, when it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that killed the program, when one did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The program's wall-clock run time in nanoseconds, as the supervisor measured it.
    #[serde(default)]
    pub wall_ns: u64,
    /// The supervisor killed the test at its time limit.
    #[serde(default)]
    pub timed_out: bool,
    /// Non-zero when the command could not be executed (the image lacks it): an unfit image, never the program's fault.
    #[serde(default)]
    pub exec_errno: i32,
    /// CPU time of the test's processes in nanoseconds, when the supervisor could read it.
    #[serde(default)]
    pub cpu_ns: Option<u64>,
    /// The cgroup's memory peak in bytes, when it could be read.
    #[serde(default)]
    pub memory_peak: Option<u64>,
    /// The cgroup's `oom_kill` count, when it could be read; above zero means the kernel killed for memory (ML).
    #[serde(default)]
    pub oom_kills: Option<u64>,
    /// A stream went past the output limit and the test was killed.
    #[serde(default)]
    pub output_exceeded: bool,
    /// What the cgroup said of memory when the time limit stopped the run.
    #[serde(flatten)]
    pub at_timeout: MemoryAtTimeout,
    /// The supervisor killed the test at its CPU-time limit.
    #[serde(default)]
    pub cpu_exceeded: bool,
    /// `written` or `missing` when the test's output is a file (the reply's stdout then carries the file); absent
    /// when it is stdout.
    #[serde(default)]
    pub output_file: Option<String>,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Hello(Hello),
    Report {
        /// Boxed: a report is far larger than any other reply.
        report: Box<ServedReport>,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// A gathered tree, or the errno that kept it from being gathered whole.
    Gathered(Result<Vec<Entry>, i32>),
    /// The sandbox was wiped: 0, or the errno of what failed (the wipe, or a request before it), and how long the
    /// wipe took.
    Cleared {
        errno: i32,
        took: std::time::Duration,
    },
}

/// A reply the runner cannot trust: the stream is out of step and the container must go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed supervisor frame: {0}")]
pub struct BadFrame(pub String);

fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.push(op);
    frame.extend_from_slice(&length(payload.len()).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn length(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Kill every process of the previous test and empty the writable directories.
pub fn wipe() -> Vec<u8> {
    frame(b'W', &[])
}

/// Writes one file.
pub fn put(file: &File<'_>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(16 + file.path.len() + file.contents.len());
    payload.extend_from_slice(&file.mode.to_le_bytes());
    payload.extend_from_slice(&file.mtime.to_le_bytes());
    payload.extend_from_slice(&length(file.path.len()).to_le_bytes());
    payload.extend_from_slice(file.path.as_bytes());
    payload.extend_from_slice(file.contents);
    frame(b'F', &payload)
}

/// Makes a directory; the owner keeps write access to it.
pub fn directory(path: &str, mode: u32) -> Vec<u8> {
    let mut payload = mode.to_le_bytes().to_vec();
    payload.extend_from_slice(path.as_bytes());
    frame(b'D', &payload)
}

/// Asks for every file and directory under `path`, refused past `limit` bytes of contents.
pub fn gather(path: &str, limit: u32) -> Vec<u8> {
    let mut payload = limit.to_le_bytes().to_vec();
    payload.extend_from_slice(path.as_bytes());
    frame(b'G', &payload)
}

/// Records the modes and times of the tree under `path`, to be put back before every sealed test.
pub fn keep(path: &str) -> Vec<u8> {
    frame(b'K', path.as_bytes())
}

pub fn exec(request: &Exec<'_>) -> Vec<u8> {
    let mut strings = Vec::new();
    for string in std::iter::once(request.workdir)
        .chain(request.argv.iter().map(String::as_str))
        .chain(request.env.iter().map(String::as_str))
        .chain(request.output_file)
    {
        // A NUL would split a string in two on the other side.
        strings.extend(string.bytes().filter(|&b| b != 0));
        strings.push(0);
    }
    let mut payload = Vec::with_capacity(28 + strings.len() + request.stdin.len());
    let flags =
        u32::from(request.seal) | u32::from(request.strict) << 1 | u32::from(request.output_file.is_some()) << 2;
    for value in [
        request.limit_ms,
        request.output_limit,
        flags,
        length(request.argv.len()),
        length(request.env.len()),
        length(strings.len()),
        request.cpu_limit_ms,
    ] {
        payload.extend_from_slice(&value.to_le_bytes());
    }
    payload.extend_from_slice(&strings);
    payload.extend_from_slice(request.stdin);
    frame(b'X', &payload)
}

/// Takes one whole reply off the front of `buffer`, or `None` until more bytes arrive.
///
/// # Errors
/// [`BadFrame`] when the bytes cannot be a reply.
pub fn take_reply(buffer: &mut Vec<u8>) -> Result<Option<Reply>, BadFrame> {
    if buffer.len() < HEADER {
        return Ok(None);
    }
    let op = buffer[0];
    let size = u32::from_le_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    if size > REPLY_LIMIT {
        return Err(BadFrame(format!("a reply of {size} bytes")));
    }
    if buffer.len() < HEADER + size {
        // Room for the whole frame at once: a buffer left to grow by doubling would take twice the largest reply.
        buffer.reserve_exact(HEADER + size - buffer.len());
        return Ok(None);
    }
    // The frame leaves the buffer without copying its payload: what follows it (little, if anything) is what moves.
    let rest = buffer.split_off(HEADER + size);
    let frame = std::mem::replace(buffer, rest);
    let payload = &frame[HEADER..];
    let mut reader = Reader(payload);
    let reply = match op {
        b'H' => Reply::Hello(Hello {
            landlock: String::from_utf8_lossy(payload)
                .split_whitespace()
                .find_map(|word| word.strip_prefix("landlock="))
                .and_then(|abi| abi.parse().ok())
                .unwrap_or(0),
        }),
        b'R' => {
            let json = reader.chunk()?;
            let report = Box::new(serde_json::from_slice(json).map_err(|e| BadFrame(format!("report: {e}")))?);
            let stdout = reader.chunk()?.to_vec();
            let stderr = reader.chunk()?.to_vec();
            Reply::Report { report, stdout, stderr }
        }
        b'A' => Reply::Gathered(gathered(&mut reader)?),
        b'C' => {
            let errno = i32::try_from(reader.u32()?).unwrap_or(i32::MAX);
            let nanos = u64::from(reader.u32()?) | (u64::from(reader.u32()?) << 32);
            Reply::Cleared {
                errno,
                took: std::time::Duration::from_nanos(nanos),
            }
        }
        other => return Err(BadFrame(format!("unknown op {other:#04x}"))),
    };
    Ok(Some(reply))
}

/// The entries of an `A` reply. A path that is not UTF-8 makes the tree uncacheable, like any other entry the
/// supervisor refuses (`EILSEQ`).
fn gathered(reader: &mut Reader<'_>) -> Result<Result<Vec<Entry>, i32>, BadFrame> {
    const EILSEQ: i32 = 84;
    let errno = reader.u32()?;
    if errno != 0 {
        return Ok(Err(i32::try_from(errno).unwrap_or(i32::MAX)));
    }
    let mut entries = Vec::new();
    let mut readable = true;
    while !reader.0.is_empty() {
        let kind = reader.take(1)?[0];
        let mode = reader.u32()?;
        let mtime = i64::from(reader.u32()?) | (i64::from(reader.u32()?) << 32);
        let path = String::from_utf8(reader.chunk()?.to_vec());
        let contents = match kind {
            b'd' => None,
            b'f' => Some(reader.chunk()?.to_vec()),
            other => return Err(BadFrame(format!("a gathered entry of kind {other:#04x}"))),
        };
        match path {
            Ok(path) => entries.push(Entry {
                path,
                mode,
                mtime,
                contents,
            }),
            Err(_) => readable = false,
        }
    }
    Ok(if readable { Ok(entries) } else { Err(EILSEQ) })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadFrame> {
        if self.0.len() < n {
            return Err(BadFrame("truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, BadFrame> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A `u32` length and that many bytes.
    fn chunk(&mut self) -> Result<&'a [u8], BadFrame> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A golden frame from `guard/fixtures` (each described in its README). The supervisor's C tests
    /// (`guard/tests/frames_test.c`, run by `tests/guard_frames.rs`) hold the guard to the same files: the requests
    /// here are what the guard decodes there, and the replies there are what is decoded here.
    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!("../../../guard/fixtures/", $name))[..]
        };
    }

    fn reply(op: u8, payload: &[u8]) -> Vec<u8> {
        frame(op, payload)
    }

    fn chunk(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// The one reply a fixture holds, which it holds whole.
    fn only_reply(fixture: &[u8]) -> Reply {
        let mut buffer = fixture.to_vec();
        let reply = take_reply(&mut buffer).unwrap().expect("a whole reply");
        assert!(buffer.is_empty(), "a fixture is one frame");
        reply
    }

    #[test]
    fn every_request_is_encoded_as_its_fixture() {
        let argv = vec!["python3".to_owned(), "/box/main.py".to_owned()];
        let env = vec!["HOME=/tmp".to_owned()];
        let run = Exec {
            limit_ms: 1500,
            output_limit: 64,
            workdir: "/box",
            argv: &argv,
            env: &env,
            stdin: b"1 2\n",
            seal: true,
            strict: false,
            cpu_limit_ms: 1000,
            output_file: Some("/tmp/out.txt"),
        };
        let file = File {
            path: "/box/main.py",
            mode: 0o444,
            mtime: 4_294_967_298,
            contents: b"print(1)\n",
        };
        assert_eq!(wipe(), fixture!("request-W-wipe.bin"));
        assert_eq!(put(&file), fixture!("request-F-file.bin"));
        assert_eq!(directory("/box/pkg", 0o755), fixture!("request-D-directory.bin"));
        assert_eq!(keep("/box"), fixture!("request-K-keep.bin"));
        assert_eq!(gather("/box", 65536), fixture!("request-G-gather.bin"));
        assert_eq!(exec(&run), fixture!("request-X-run.bin"));
    }

    #[test]
    fn the_strict_filter_is_the_second_flag_of_a_run() {
        let run = Exec {
            limit_ms: 1,
            output_limit: 1,
            workdir: "/",
            argv: &[],
            env: &[],
            stdin: b"",
            seal: false,
            strict: true,
            cpu_limit_ms: 0,
            output_file: None,
        };
        let flags = |request: &Exec<'_>| {
            let frame = exec(request);
            u32::from_le_bytes(frame[HEADER + 8..HEADER + 12].try_into().unwrap())
        };
        assert_eq!(flags(&run), 2);
        assert_eq!(
            flags(&Exec {
                seal: true,
                ..run.clone()
            }),
            3
        );
        assert_eq!(flags(&Exec { strict: false, ..run }), 0);
    }

    #[test]
    fn the_hello_fixture_says_the_guard_can_seal() {
        assert_eq!(
            only_reply(fixture!("reply-H-hello.bin")),
            Reply::Hello(Hello { landlock: 6 })
        );
    }

    #[test]
    fn the_report_fixture_of_a_test_that_exited_decodes_every_field() {
        let expected = Reply::Report {
            report: Box::new(ServedReport {
                setup_errno: 0,
                exit_code: Some(0),
                signal: None,
                wall_ns: 14_140_904,
                timed_out: false,
                exec_errno: 0,
                cpu_ns: Some(24_991_543),
                memory_peak: Some(4_087_808),
                oom_kills: Some(0),
                output_exceeded: false,
                at_timeout: MemoryAtTimeout::default(),
                cpu_exceeded: false,
                output_file: None,
            }),
            stdout: b"3\n".to_vec(),
            stderr: b"warning: unused\n".to_vec(),
        };
        assert_eq!(only_reply(fixture!("reply-R-exited.bin")), expected);
    }

    #[test]
    fn the_report_fixture_of_a_test_stopped_at_its_time_limit_carries_the_memory_facts() {
        let expected = Reply::Report {
            report: Box::new(ServedReport {
                setup_errno: 0,
                exit_code: None,
                signal: Some(9),
                wall_ns: 1_500_412_345,
                timed_out: true,
                exec_errno: 0,
                cpu_ns: Some(1_498_000_000),
                memory_peak: Some(16_777_216),
                oom_kills: None,
                output_exceeded: false,
                at_timeout: MemoryAtTimeout {
                    memory_limit: Some(16_777_216),
                    memory_at_timeout: Some(16_687_104),
                    refaulted_before_timeout: Some(215_875_584),
                },
                cpu_exceeded: false,
                output_file: None,
            }),
            stdout: b"partial".to_vec(),
            stderr: Vec::new(),
        };
        assert_eq!(only_reply(fixture!("reply-R-timed-out.bin")), expected);
    }

    #[test]
    fn the_report_fixture_of_a_failed_setup_has_only_its_errno() {
        let Reply::Report { report, stdout, stderr } = only_reply(fixture!("reply-R-setup-errno.bin")) else {
            panic!("not a report");
        };
        assert_eq!(
            (report.setup_errno, report.exit_code, report.signal, report.wall_ns),
            (28, None, None, 0)
        );
        assert!(stdout.is_empty() && stderr.is_empty());
    }

    #[test]
    fn the_gathered_tree_fixture_is_decoded_parents_first() {
        let expected = vec![
            Entry {
                path: "pkg".into(),
                mode: 0o755,
                mtime: -2,
                contents: None,
            },
            Entry {
                path: "pkg/Main.class".into(),
                mode: 0o644,
                mtime: 4_294_967_298,
                contents: Some(vec![0xca, 0xfe, 0xba, 0xbe]),
            },
        ];
        assert_eq!(only_reply(fixture!("reply-A-tree.bin")), Reply::Gathered(Ok(expected)));
    }

    #[test]
    fn the_cleared_fixtures_carry_the_wipes_errno_and_time() {
        use std::time::Duration;
        assert_eq!(
            only_reply(fixture!("reply-C-cleared.bin")),
            Reply::Cleared {
                errno: 0,
                took: Duration::from_nanos(1_500_000)
            }
        );
        assert_eq!(
            only_reply(fixture!("reply-C-errno.bin")),
            Reply::Cleared {
                errno: 39,
                took: Duration::from_nanos(5_000_000_123)
            }
        );
    }

    #[test]
    fn the_gathered_errno_fixture_is_a_tree_too_large() {
        assert_eq!(only_reply(fixture!("reply-A-errno.bin")), Reply::Gathered(Err(EFBIG)));
    }

    #[test]
    fn a_reply_is_decoded_only_once_whole_and_the_next_one_stays() {
        let whole = fixture!("reply-R-exited.bin");
        let mut buffer = whole[..whole.len() - 1].to_vec();
        assert_eq!(take_reply(&mut buffer), Ok(None));
        buffer.push(whole[whole.len() - 1]);
        buffer.extend_from_slice(fixture!("reply-H-hello.bin"));
        assert!(matches!(take_reply(&mut buffer), Ok(Some(Reply::Report { .. }))));
        assert_eq!(
            take_reply(&mut buffer),
            Ok(Some(Reply::Hello(Hello { landlock: 6 }))),
            "the next frame stays"
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn the_hello_tells_whether_tests_can_be_sealed() {
        for (greeting, landlock, seals) in [
            (&b"scrc-guard 1 landlock=7"[..], 7, true),
            (b"scrc-guard 1 landlock=2", 2, false),
            (b"scrc-guard 1", 0, false),
        ] {
            let mut buffer = reply(b'H', greeting);
            let Some(Reply::Hello(hello)) = take_reply(&mut buffer).unwrap() else {
                panic!("not a hello");
            };
            assert_eq!((hello.landlock, hello.can_seal()), (landlock, seals));
        }
    }

    #[test]
    fn a_tree_with_a_path_that_is_not_utf8_or_cut_short_is_refused() {
        let mut payload = 0u32.to_le_bytes().to_vec();
        payload.push(b'f');
        payload.extend(0o644u32.to_le_bytes());
        payload.extend(0i64.to_le_bytes());
        payload.extend(chunk(b"\xff.class"));
        payload.extend(chunk(b""));
        let mut buffer = reply(b'A', &payload);
        assert_eq!(
            take_reply(&mut buffer),
            Ok(Some(Reply::Gathered(Err(84)))),
            "a path that is not UTF-8"
        );
        let mut buffer = reply(b'A', &[0, 0, 0, 0, b'f', 1]);
        assert!(take_reply(&mut buffer).is_err(), "a truncated entry");
    }

    #[test]
    fn the_largest_replies_the_configuration_allows_fit_the_reply_limit() {
        // A test's report: the JSON (the supervisor's buffer is 768 bytes) and both streams at the largest limit.
        let report = 4 + 768 + 4 + MAX_OUTPUT_LIMIT + 4 + MAX_OUTPUT_LIMIT;
        // A gathered tree: the errno and every byte of the entries, all counted against the artifact limit.
        let tree = 4 + MAX_ARTIFACT_LIMIT;
        assert!(report <= REPLY_LIMIT && tree <= REPLY_LIMIT);
        let mut buffer = vec![b'A'];
        buffer.extend(u32::try_from(tree).unwrap().to_le_bytes());
        assert_eq!(
            take_reply(&mut buffer),
            Ok(None),
            "a reply that large is waited for, not refused"
        );
    }

    #[test]
    fn an_oversized_or_unknown_reply_is_refused() {
        let mut buffer = vec![b'R', 0xff, 0xff, 0xff, 0xff];
        assert!(take_reply(&mut buffer).is_err());
        let mut buffer = reply(b'?', b"");
        assert!(take_reply(&mut buffer).is_err());
    }
}
