//! Output capture with a hard cap per stream. Whatever a program writes, the runner holds at most the cap of each
//! stream; the first byte past a cap is the signal to kill the container (OL).

use bollard::container::LogOutput;

#[derive(Debug)]
pub struct Capture {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    stdout_cap: usize,
    stderr_cap: usize,
}

/// What the last chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// A stream went past its cap; the kept bytes stop at the cap.
    Exceeded,
}

impl Capture {
    pub fn new(stdout_cap: usize, stderr_cap: usize) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_cap,
            stderr_cap,
        }
    }

    pub fn push(&mut self, chunk: LogOutput) -> Flow {
        let (buffer, cap, bytes) = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (&mut self.stdout, self.stdout_cap, message)
            }
            LogOutput::StdErr { message } => (&mut self.stderr, self.stderr_cap, message),
            LogOutput::StdIn { .. } => return Flow::Continue,
        };
        let room = cap.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            Flow::Exceeded
        } else {
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> LogOutput {
        LogOutput::StdOut {
            message: text.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn streams_are_kept_up_to_their_caps() {
        let mut capture = Capture::new(5, 3);
        assert_eq!(capture.push(out("abc")), Flow::Continue);
        assert_eq!(capture.push(out("de")), Flow::Continue);
        assert_eq!(capture.push(out("f")), Flow::Exceeded);
        assert_eq!(capture.stdout, b"abcde");
        let err = LogOutput::StdErr {
            message: b"12345".to_vec().into(),
        };
        assert_eq!(capture.push(err), Flow::Exceeded);
        assert_eq!(capture.stderr, b"123");
    }
}
