//! What a runner is doing, read from its JSON log as it grows: which partitions it owns (`partitions assigned` and
//! `partitions revoked`) and which scripts it is judging (`judging` until `result published`). The chaos run needs
//! both to start a rebalance exactly while every slot of a runner is busy, and to time that rebalance.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One runner's log, read incrementally. A restarted runner appends to the same file, so [`RunnerLog::restarted`]
/// forgets what the previous process owned and judged.
#[derive(Debug)]
pub struct RunnerLog {
    path: PathBuf,
    /// Bytes of the file already read.
    read: u64,
    /// The end of the last read when it stopped mid-line.
    partial: String,
    /// Partitions this process owns now.
    pub owned: BTreeSet<i32>,
    /// Scripts this process has started judging and not yet published.
    pub judging: BTreeSet<String>,
}

impl RunnerLog {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            read: 0,
            partial: String::new(),
            owned: BTreeSet::new(),
            judging: BTreeSet::new(),
        }
    }

    /// Reads what the runner logged since the last call. A log that does not exist yet reads as empty.
    pub fn refresh(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let mut fresh = String::new();
        if file.seek(SeekFrom::Start(self.read)).is_err() || file.read_to_string(&mut fresh).is_err() {
            return;
        }
        self.read += fresh.len() as u64;
        let text = std::mem::take(&mut self.partial) + &fresh;
        let mut lines: Vec<&str> = text.split('\n').collect();
        // The last piece is a line still being written (or empty after a final newline).
        self.partial = lines.pop().unwrap_or_default().to_owned();
        for line in lines {
            self.apply(line);
        }
    }

    /// Forgets the previous process's state: a new process owns nothing and judges nothing yet.
    pub fn restarted(&mut self) {
        self.refresh();
        self.partial.clear();
        self.owned.clear();
        self.judging.clear();
    }

    fn apply(&mut self, line: &str) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return;
        };
        // The script's id is a field of the event, or of the `judge` span it is logged in.
        let script = || {
            event["script_id"]
                .as_str()
                .or_else(|| event["span"]["script_id"].as_str())
                .map(str::to_owned)
        };
        match event["message"].as_str().unwrap_or_default() {
            "partitions assigned" => self.owned.extend(partitions(&event["assigned"])),
            message if message.starts_with("partitions revoked") => {
                for partition in partitions(&event["revoked"]) {
                    self.owned.remove(&partition);
                }
            }
            "judging" => self.judging.extend(script()),
            "result published" => {
                if let Some(id) = script() {
                    self.judging.remove(&id);
                }
            }
            _ => {}
        }
    }
}

/// The partition numbers of a logged list: a `Debug` rendering such as `"[0, 3]"`, or a JSON array.
fn partitions(field: &Value) -> Vec<i32> {
    match field {
        Value::Array(items) => items.iter().filter_map(|v| v.as_i64()?.try_into().ok()).collect(),
        Value::String(text) => text
            .split(|c: char| !c.is_ascii_digit() && c != '-')
            .filter_map(|n| n.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(fields: &str) -> String {
        format!("{{\"timestamp\":\"t\",\"level\":\"INFO\",{fields},\"target\":\"scrc\"}}\n")
    }

    #[test]
    fn follows_ownership_and_judging_across_partial_writes_and_a_restart() {
        let path = std::env::temp_dir().join(format!("runner-log-{}.log", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        let mut log = RunnerLog::new(&path);

        write!(
            file,
            "{}",
            line(r#""message":"partitions assigned","assigned":"[0, 1, 2]""#)
        )
        .unwrap();
        write!(
            file,
            "{}",
            line(r#""message":"judging","span":{"script_id":"s1","language":"python","name":"judge"}"#)
        )
        .unwrap();
        let half = line(r#""message":"judging","script_id":"s2""#);
        write!(file, "{}", &half[..20]).unwrap();
        log.refresh();
        assert_eq!(log.owned, BTreeSet::from([0, 1, 2]));
        assert_eq!(log.judging, BTreeSet::from(["s1".to_owned()]));

        write!(file, "{}", &half[20..]).unwrap();
        write!(
            file,
            "{}",
            line(
                r#""message":"partitions revoked; their in-flight results will not be committed here","revoked":"[1]""#
            )
        )
        .unwrap();
        write!(
            file,
            "{}",
            line(r#""message":"result published","script_id":"s1","status":"OK""#)
        )
        .unwrap();
        writeln!(file, "not json at all").unwrap();
        log.refresh();
        assert_eq!(log.owned, BTreeSet::from([0, 2]));
        assert_eq!(log.judging, BTreeSet::from(["s2".to_owned()]));

        log.restarted();
        assert!(log.owned.is_empty() && log.judging.is_empty());
        write!(file, "{}", line(r#""message":"partitions assigned","assigned":"[5]""#)).unwrap();
        log.refresh();
        assert_eq!(log.owned, BTreeSet::from([5]));
        let _ = std::fs::remove_file(&path);
    }
}
