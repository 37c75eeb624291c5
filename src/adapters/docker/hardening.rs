//! Container hardening, in one place. Every sandbox container, build and run alike, is described by a
//! [`ContainerSpec`] and turned into a Docker request here, so no container can be created without it:
//!
//! - no network (`network_mode=none`);
//! - a read-only root filesystem, and size-limited `/tmp` and `/dev/shm` tmpfs mounted nosuid, nodev and noexec, each
//!   with an inode bound of one inode per page of its size ([`inode_bound`]), so that no test can leave more entries
//!   than the wipe before the next test clears at once;
//! - a PID limit, a CPU quota, and memory with swap equal to memory (so swap never extends the limit);
//! - every capability dropped but the supervisor's few, `no-new-privileges`, and builds and tests run as an
//!   unprivileged user of the sandbox's own with no capability at all (see [`super::uids`] and `guard/user.h`), so
//!   that no per-user kernel counter is shared with another sandbox and no test shares a uid with its supervisor;
//! - ulimits: open files, file size (so nothing writes a huge file), and no core dumps;
//! - no host mounts: only scrc's own Docker volumes, the program's read-only;
//! - no container logs (`log driver none`): output is read live and capped by the runner;
//! - labels naming the runner instance, the role, the user and an expiry, for cleanup after a crash.
//!
//! The sandbox supervisor is the entrypoint, so whatever the image declares never runs first.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits};

/// The unprivileged user of a container that is never started (a filler of volumes).
const FILLER_USER: &str = "65534:65534";

/// A sandbox starts as root inside its container: its supervisor, PID 1, drops every build and test to the
/// sandbox's own uid (its `--uid`), which leaves the test no capability and the supervisor out of its reach.
const SUPERVISOR_USER: &str = "0:0";

/// What the supervisor keeps of root: making the files it puts in the sandbox user's (CHOWN), wiping and gathering
/// whatever a test left, whatever its modes (DAC_OVERRIDE, FOWNER), killing the test's processes (KILL), and
/// becoming the sandbox's user for each test (SETGID, SETUID). A test has none of them.
const SUPERVISOR_CAPABILITIES: [&str; 6] = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"];

/// The bytes of a tmpfs per inode it may hold: one inode per page. An empty file or directory takes an inode and no
/// page, so without a bound a test could leave millions of them; with it, a tmpfs holds no more entries than pages.
const BYTES_PER_INODE: u64 = 4096;

/// The inodes a tmpfs of `bytes` may hold, at least 1,024.
pub fn inode_bound(bytes: u64) -> u64 {
    (bytes / BYTES_PER_INODE).max(1024)
}

/// Settings that apply to every sandbox container.
#[derive(Debug, Clone, PartialEq)]
pub struct HardeningSettings {
    /// Processes and threads per container (`RUNNER_PIDS_LIMIT`).
    pub pids_limit: i64,
    /// CPUs per container (`RUNNER_CPUS`).
    pub cpus: f64,
    /// Open files per process (`RUNNER_NOFILE_LIMIT`).
    pub nofile: i64,
    /// Largest file a process may write, in bytes (`RUNNER_FILE_SIZE_LIMIT`).
    pub file_size: i64,
    /// Size of `/dev/shm`, which counts against the memory limit.
    pub shm_bytes: i64,
    /// The engine's OCI runtime for sandboxes (`RUNNER_DOCKER_RUNTIME`, such as gVisor's `runsc`); `None` for the
    /// engine's default.
    pub runtime: Option<String>,
}

/// gVisor's kernel (the Sentry) runs inside the container's cgroup, so its own memory is charged beside the
/// program's: about 12 MiB idle and 14–16 MiB beside a 100 MiB Python or Java program on this machine. A sandbox
/// under gVisor gets this much more than its limit, so that a program that fits under runc fits under gVisor.
const GVISOR_KERNEL_MEMORY: u64 = 24 << 20;

/// Under gVisor's default platform (ptrace) every process of the program is backed by several host tasks (stub
/// processes and the Sentry's threads that trace them), all counted by the container's PID limit: at 128 it stops
/// the Sentry itself before the program reaches 128. Measured here: 127 sleeping processes need between 500 and 800
/// host tasks, and a fork bomb held at 128 processes by RLIMIT_NPROC 2,253. The program's own limit is then
/// RLIMIT_NPROC on its uid, which gVisor enforces; the container's bounds the host tasks behind it.
const GVISOR_TASKS_PER_PROCESS: i64 = 20;

impl HardeningSettings {
    /// Whether sandboxes run under gVisor (`RUNNER_DOCKER_RUNTIME=runsc`), a kernel of their own.
    pub fn gvisor(&self) -> bool {
        self.runtime.as_deref() == Some("runsc")
    }

    /// Whether the runtime can change a started container's memory limit (`docker update`). gVisor's `runsc` cannot:
    /// it has no `update` command, so a run container is started with its script's limit instead.
    pub fn updates_memory(&self) -> bool {
        !self.gvisor()
    }

    /// The container's memory limit for a sandbox whose program may use `memory` bytes.
    fn container_memory(&self, memory: u64) -> u64 {
        if self.gvisor() {
            memory.saturating_add(GVISOR_KERNEL_MEMORY)
        } else {
            memory
        }
    }

    /// The container's PID limit: the program's own, or under gVisor room for the host tasks behind them.
    fn container_pids(&self) -> i64 {
        if self.gvisor() {
            self.pids_limit
                .saturating_mul(GVISOR_TASKS_PER_PROCESS)
                .saturating_add(64)
        } else {
            self.pids_limit
        }
    }

    /// The supervisor's capabilities. Under gVisor also SYS_ADMIN, which there is the Sentry's to grant and no
    /// host's: with it the supervisor gives each test an IPC namespace of its own, as gVisor applies no IPC sysctls.
    fn capabilities(&self) -> Vec<String> {
        let mut capabilities: Vec<String> = SUPERVISOR_CAPABILITIES.iter().map(|&cap| cap.to_owned()).collect();
        if self.gvisor() {
            capabilities.push("SYS_ADMIN".into());
        }
        capabilities
    }

    /// What the supervisor is told of the sandbox's kernel (see `run_configure` in `guard/run.h`).
    pub fn supervisor_options(&self) -> &'static [&'static str] {
        if self.gvisor() {
            &["--own-ipc", "--sample-memory"]
        } else {
            &[]
        }
    }
}

/// A Docker volume mounted into a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The Docker volume's name.
    pub volume: String,
    /// Where in the container it is mounted (the program directory, the supervisor's directory, a toolchain directory).
    pub target: String,
    /// Mounted read-only, so that nothing in the container can change it (a run's program, the supervisor, toolchains).
    pub read_only: bool,
}

/// Everything that differs between sandbox containers.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The build or run image of the script's language, or the image a toolchain volume is filled from.
    pub image: String,
    /// The supervisor, run as PID 1.
    pub entrypoint: String,
    /// The supervisor's arguments: the wall limit, then the program and its arguments.
    pub command: Vec<String>,
    /// The container's environment over the image's own; empty for a warm sandbox, whose program's comes per test.
    pub env: Vec<String>,
    /// The container's working directory.
    pub workdir: String,
    /// The volumes mounted: the program volume, the supervisor's, and any shared toolchain directories.
    pub volumes: Vec<VolumeMount>,
    /// Memory limit in bytes (RAM plus swap).
    pub memory: u64,
    /// Size of the `/tmp` tmpfs in bytes; it counts against the memory limit.
    pub tmpfs_bytes: u64,
    /// The `scrc.*` labels by which the reaper and an operator find whose container it is and when it expires.
    pub labels: HashMap<String, String>,
}

/// A container that is never started: creating it makes Docker fill its empty volumes from the image's files at
/// their mount points, and the archive API can write into them through it. Nothing runs in it, so it needs none of
/// the hardening above; it has no network all the same.
pub fn filler(image: &str, volumes: &[VolumeMount], labels: HashMap<String, String>) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["/nonexistent".into()]),
        user: Some(FILLER_USER.into()),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(
                volumes
                    .iter()
                    .map(|volume| Mount {
                        target: Some(volume.target.clone()),
                        source: Some(volume.volume.clone()),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(volume.read_only),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        labels: Some(labels),
        ..Default::default()
    }
}

/// SysV and POSIX IPC closed inside the container's private IPC namespace, so that no test can leave a message
/// queue, a semaphore or a shared-memory segment for the next test of the same container: shared memory is
/// removed with its last user, and no queue or semaphore set can be made. Namespaced sysctls need no privilege.
fn ipc_closed() -> HashMap<String, String> {
    HashMap::from([
        ("kernel.shm_rmid_forced".to_owned(), "1".to_owned()),
        ("kernel.msgmni".to_owned(), "0".to_owned()),
        ("kernel.sem".to_owned(), "0 0 0 0".to_owned()),
        ("fs.mqueue.queues_max".to_owned(), "0".to_owned()),
    ])
}

/// A tmpfs anyone may write, that no program started from, of `bytes` and its inode bound.
fn bounded_tmpfs(bytes: u64) -> String {
    format!(
        "rw,nosuid,nodev,noexec,size={bytes},nr_inodes={},mode=1777",
        inode_bound(bytes)
    )
}

/// The only way scrc builds a container request.
pub fn hardened(spec: ContainerSpec, settings: &HardeningSettings) -> ContainerCreateBody {
    let memory = i64::try_from(settings.container_memory(spec.memory)).unwrap_or(i64::MAX);
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(value),
        hard: Some(value),
    };
    let host_config = HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(settings.capabilities()),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        privileged: Some(false),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((settings.cpus * 1e9) as i64),
        pids_limit: Some(settings.container_pids()),
        tmpfs: Some(HashMap::from([
            ("/tmp".to_owned(), bounded_tmpfs(spec.tmpfs_bytes)),
            (
                "/dev/shm".to_owned(),
                bounded_tmpfs(u64::try_from(settings.shm_bytes).unwrap_or(0)),
            ),
        ])),
        sysctls: Some(ipc_closed()),
        mounts: Some(
            spec.volumes
                .into_iter()
                .map(|volume| Mount {
                    target: Some(volume.target),
                    source: Some(volume.volume),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(volume.read_only),
                    ..Default::default()
                })
                .collect(),
        ),
        ulimits: Some(vec![
            ulimit("nofile", settings.nofile),
            // Counted per uid, which is the sandbox's own: its processes and threads, whatever the runtime.
            ulimit("nproc", settings.pids_limit),
            ulimit("fsize", settings.file_size),
            ulimit("core", 0),
        ]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        ipc_mode: Some("private".into()),
        init: Some(false),
        auto_remove: Some(false),
        oom_kill_disable: Some(false),
        runtime: settings.runtime.clone(),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image),
        entrypoint: Some(vec![spec.entrypoint]),
        cmd: Some(spec.command),
        env: Some(spec.env),
        working_dir: Some(spec.workdir),
        user: Some(SUPERVISOR_USER.into()),
        labels: Some(spec.labels),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            image: "img".into(),
            entrypoint: "/box/.scrc-guard".into(),
            command: vec!["1000".into(), "/box/prog".into()],
            env: vec![],
            workdir: "/tmp".into(),
            volumes: vec![VolumeMount {
                volume: "v".into(),
                target: "/box".into(),
                read_only: true,
            }],
            memory: 64 << 20,
            tmpfs_bytes: 16 << 20,
            labels: HashMap::from([("scrc.instance".into(), "r1".into())]),
        }
    }

    fn settings() -> HardeningSettings {
        HardeningSettings {
            pids_limit: 128,
            cpus: 1.0,
            nofile: 256,
            file_size: 64 << 20,
            shm_bytes: 16 << 20,
            runtime: None,
        }
    }

    #[test]
    fn every_container_gets_the_full_hardening() {
        let body = hardened(spec(), &settings());
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, host.memory, "swap never extends the limit");
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.pids_limit, Some(128));
        let tmp = &host.tmpfs.as_ref().unwrap()["/tmp"];
        assert!(
            tmp.contains("nosuid") && tmp.contains("nodev") && tmp.contains("size=16777216"),
            "{tmp}"
        );
        assert!(tmp.contains("nr_inodes=4096"), "one inode per page: {tmp}");
        let shm = &host.tmpfs.as_ref().unwrap()["/dev/shm"];
        assert!(
            shm.contains("noexec") && shm.contains("size=16777216") && shm.contains("nr_inodes=4096"),
            "{shm}"
        );
        let limits: Vec<(String, i64)> = host
            .ulimits
            .iter()
            .flatten()
            .map(|u| (u.name.clone().unwrap(), u.hard.unwrap()))
            .collect();
        assert_eq!(
            limits,
            [
                ("nofile".into(), 256),
                ("nproc".into(), 128),
                ("fsize".into(), 64 << 20),
                ("core".into(), 0)
            ]
        );
        assert!(!tmp.contains(",exec"), "{tmp}");
        assert_eq!(host.tmpfs.as_ref().unwrap().len(), 2, "only /tmp and /dev/shm");
        let sysctls = host.sysctls.as_ref().unwrap();
        assert_eq!(sysctls["kernel.shm_rmid_forced"], "1");
        assert_eq!(sysctls["kernel.msgmni"], "0");
        assert_eq!(sysctls["kernel.sem"], "0 0 0 0");
        assert_eq!(sysctls["fs.mqueue.queues_max"], "0");
        assert_eq!(host.ipc_mode.as_deref(), Some("private"));
        assert_eq!(host.binds, None, "no host mounts");
        let mounts = host.mounts.as_ref().unwrap();
        assert!(
            mounts.iter().all(|m| m.typ == Some(MountType::VOLUME)),
            "only Docker volumes"
        );
        assert_eq!(host.log_config.as_ref().unwrap().typ.as_deref(), Some("none"));
        assert_eq!(
            body.user.as_deref(),
            Some("0:0"),
            "the supervisor, which drops every test to the sandbox's user"
        );
        assert_eq!(
            host.cap_add.as_deref(),
            Some(&["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"].map(String::from)[..])
        );
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(body.entrypoint, Some(vec!["/box/.scrc-guard".to_owned()]));
        assert_eq!(body.labels.as_ref().unwrap()["scrc.instance"], "r1");
        assert_eq!(host.runtime, None, "the engine's default runtime");
    }

    #[test]
    fn a_configured_runtime_runs_every_sandbox() {
        let crun = HardeningSettings {
            runtime: Some("crun".into()),
            ..settings()
        };
        let host = hardened(spec(), &crun).host_config.unwrap();
        assert_eq!(host.runtime.as_deref(), Some("crun"));
        assert_eq!((host.memory, host.pids_limit), (Some(64 << 20), Some(128)));
        assert!(crun.updates_memory() && crun.supervisor_options().is_empty());
    }

    #[test]
    fn under_gvisor_its_kernel_gets_room_beside_the_program() {
        let gvisor = HardeningSettings {
            runtime: Some("runsc".into()),
            ..settings()
        };
        let body = hardened(spec(), &gvisor);
        let host = body.host_config.unwrap();
        assert_eq!(host.runtime.as_deref(), Some("runsc"));
        assert_eq!(
            host.memory,
            Some((64 << 20) + (24 << 20)),
            "the program's 64 MiB and the Sentry's"
        );
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(
            host.pids_limit,
            Some(128 * 20 + 64),
            "the host tasks behind 128 processes"
        );
        let nproc = host
            .ulimits
            .iter()
            .flatten()
            .find(|u| u.name.as_deref() == Some("nproc"));
        assert_eq!(nproc.and_then(|u| u.hard), Some(128), "the program's own limit");
        assert!(host.cap_add.unwrap().contains(&"SYS_ADMIN".to_owned()));
        assert!(!gvisor.updates_memory());
        assert_eq!(gvisor.supervisor_options(), ["--own-ipc", "--sample-memory"]);
    }
}
