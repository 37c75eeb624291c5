//! A thin wrapper over bollard: one method per Docker operation the sandbox uses, each bounded by a timeout. Each
//! fails with an [`EngineError`] naming its operation and holding bollard's error; one conversion into the runtime
//! port's [`RuntimeError`] decides what is worth retrying. Nothing here knows about scripts or languages.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::container::AttachContainerResults;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerState, ContainerSummaryStateEnum, ContainerUpdateBody, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;

use crate::ports::RuntimeError;

/// How long a single API call may take before the engine counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A Docker operation the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Connect,
    Ping,
    Info,
    CreateContainer,
    Attach,
    UpdateContainer,
    StartContainer,
    KillContainer,
    WaitContainer,
    InspectContainer,
    RemoveContainer,
    Upload,
    Download,
    CreateVolume,
    InspectVolume,
    RemoveVolume,
    ListContainers,
    ListVolumes,
    InspectImage,
    Pull,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Operation::Connect => "connect",
            Operation::Ping => "ping",
            Operation::Info => "info",
            Operation::CreateContainer => "create container",
            Operation::Attach => "attach",
            Operation::UpdateContainer => "update container",
            Operation::StartContainer => "start container",
            Operation::KillContainer => "kill container",
            Operation::WaitContainer => "wait for container",
            Operation::InspectContainer => "inspect container",
            Operation::RemoveContainer => "remove container",
            Operation::Upload => "upload to container",
            Operation::Download => "download from container",
            Operation::CreateVolume => "create volume",
            Operation::InspectVolume => "inspect volume",
            Operation::RemoveVolume => "remove volume",
            Operation::ListContainers => "list containers",
            Operation::ListVolumes => "list volumes",
            Operation::InspectImage => "inspect image",
            Operation::Pull => "pull image",
        };
        f.write_str(text)
    }
}

/// Why a Docker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine answered with an error, or the transport failed.
    #[error("{operation}")]
    Api {
        operation: Operation,
        #[source]
        source: BollardError,
    },
    /// No answer within the operation's bound.
    #[error("{operation}: no answer within {} s", after.as_secs())]
    TimedOut { operation: Operation, after: Duration },
    /// The engine answered, but without what the operation needs.
    #[error("{operation}: {what}")]
    Incomplete { operation: Operation, what: &'static str },
    /// A container's image is not on the engine.
    #[error("{operation}")]
    NoSuchImage {
        operation: Operation,
        image: String,
        #[source]
        source: BollardError,
    },
    /// `DOCKER_HOST` names a scheme bollard cannot speak.
    #[error("DOCKER_HOST {0:?} is not supported: use unix://, tcp:// or http://")]
    UnsupportedHost(String),
}

impl EngineError {
    /// The one place that decides what is worth retrying. Server errors, transport failures and silence mean the
    /// engine is unwell: retry, and count toward the circuit breaker. Client errors mean this request is wrong for
    /// this container (a fresh attempt in a fresh container may still work, see [`RuntimeError::Sandbox`]); a
    /// missing image stays missing.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Api {
                source: BollardError::DockerResponseServerError { status_code, .. },
                ..
            } => *status_code >= 500,
            EngineError::Api { .. } | EngineError::TimedOut { .. } => true,
            EngineError::Incomplete { .. } | EngineError::NoSuchImage { .. } | EngineError::UnsupportedHost(_) => false,
        }
    }

    /// The engine's HTTP status, when it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Api {
                source: BollardError::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }
}

impl From<EngineError> for RuntimeError {
    fn from(error: EngineError) -> Self {
        if error.is_retryable() {
            return RuntimeError::Unavailable(Box::new(error));
        }
        match error {
            EngineError::NoSuchImage { ref image, .. } => RuntimeError::ImageMissing {
                image: image.clone(),
                cause: Box::new(error),
            },
            other => RuntimeError::Sandbox(Box::new(other)),
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    /// The bollard client of the engine (`DOCKER_HOST`), with its negotiated API version; clones share it.
    docker: Docker,
}

/// A container or volume scrc created, as listed by label.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The container's or volume's name, which removing it takes.
    pub name: String,
    /// Its `scrc.*` labels: whose it is, its role and when it expires, which the reaper decides by.
    pub labels: HashMap<String, String>,
    /// Whether a container has stopped (exited or dead); never for a volume or a container not yet started.
    pub stopped: bool,
}

impl Engine {
    /// Connects to `host` (`unix:///path`, `tcp://host:port` or `http://host:port`), or to the local default
    /// socket, and negotiates the API version, so that older engines (this project's CI runs Docker 20.10, API
    /// 1.41) are spoken to in their own version.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot be reached or `host` is not understood.
    pub async fn connect(host: Option<&str>) -> Result<Self, EngineError> {
        const CLIENT_TIMEOUT: u64 = 120;
        let docker = match host {
            None => Docker::connect_with_unix_defaults(),
            Some(host) if host.starts_with("unix://") => {
                Docker::connect_with_unix(host, CLIENT_TIMEOUT, bollard::API_DEFAULT_VERSION)
            }
            Some(host) if host.starts_with("tcp://") || host.starts_with("http://") => {
                Docker::connect_with_http(host, CLIENT_TIMEOUT, bollard::API_DEFAULT_VERSION)
            }
            Some(other) => return Err(EngineError::UnsupportedHost(other.to_owned())),
        }
        .map_err(api(Operation::Connect))?;
        let docker = bounded(Operation::Connect, docker.negotiate_version()).await?;
        Ok(Self { docker })
    }

    pub async fn ping(&self) -> Result<(), EngineError> {
        bounded(Operation::Ping, self.docker.ping()).await.map(|_| ())
    }

    pub async fn create_container(&self, name: &str, body: ContainerCreateBody) -> Result<String, EngineError> {
        let image = body.image.clone().unwrap_or_default();
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match bounded(
            Operation::CreateContainer,
            self.docker.create_container(Some(options), body),
        )
        .await
        {
            Ok(created) => Ok(created.id),
            Err(EngineError::Api {
                operation,
                source: source @ BollardError::DockerResponseServerError { status_code: 404, .. },
            }) => Err(EngineError::NoSuchImage {
                operation,
                image,
                source,
            }),
            Err(error) => Err(error),
        }
    }

    pub async fn attach(&self, id: &str) -> Result<AttachContainerResults, EngineError> {
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        bounded(Operation::Attach, self.docker.attach_container(id, Some(options))).await
    }

    /// Sets a container's memory limit, with swap equal to it (as [`super::hardening`] does).
    pub async fn update_memory(&self, id: &str, bytes: u64) -> Result<(), EngineError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let body = ContainerUpdateBody {
            memory: Some(bytes),
            memory_swap: Some(bytes),
            ..Default::default()
        };
        bounded(Operation::UpdateContainer, self.docker.update_container(id, body)).await
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        bounded(Operation::StartContainer, self.docker.start_container(id, None)).await
    }

    /// Sends SIGKILL. A container that already stopped (409, "is not running") is not an error.
    pub async fn kill(&self, id: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default().signal("KILL").build();
        match bounded(Operation::KillContainer, self.docker.kill_container(id, Some(options))).await {
            Err(error) if error.status() == Some(409) => Ok(()),
            other => other,
        }
    }

    /// Waits until the container is not running and returns its exit code.
    pub async fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<i64, EngineError> {
        let operation = Operation::WaitContainer;
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut stream = self.docker.wait_container(id, Some(options));
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => Err(EngineError::TimedOut {
                operation,
                after: timeout,
            }),
            Ok(None) => Err(EngineError::Incomplete {
                operation,
                what: "the stream ended without an answer",
            }),
            Ok(Some(Ok(response))) => Ok(response.status_code),
            Ok(Some(Err(BollardError::DockerContainerWaitError { code, .. }))) => Ok(code),
            Ok(Some(Err(source))) => Err(EngineError::Api { operation, source }),
        }
    }

    pub async fn state(&self, id: &str) -> Result<ContainerState, EngineError> {
        let operation = Operation::InspectContainer;
        let inspected = bounded(operation, self.docker.inspect_container(id, None)).await?;
        inspected.state.ok_or(EngineError::Incomplete {
            operation,
            what: "no state",
        })
    }

    /// Removes a container and whatever it holds, running or not. A container already gone is not an error, nor
    /// one whose removal is already under way (a forced removal meets a conflict only then: the engine answers 409
    /// "removal ... is already in progress" when, say, the reaper meets a container the pool is removing in the
    /// background): either way it is going.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        let removed = bounded(
            Operation::RemoveContainer,
            self.docker.remove_container(id, Some(options)),
        )
        .await;
        match gone_is_fine(removed) {
            Err(error) if error.status() == Some(409) => Ok(()),
            other => other,
        }
    }

    pub async fn upload(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        let options = UploadToContainerOptionsBuilder::default().path(path).build();
        bounded(
            Operation::Upload,
            self.docker
                .upload_to_container(id, Some(options), bollard::body_full(tar.into())),
        )
        .await
    }

    /// Downloads `path` as a tar archive, refusing more than `max_bytes`.
    pub async fn download(&self, id: &str, path: &str, max_bytes: usize) -> Result<Download, EngineError> {
        let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut tar = Vec::new();
        let collect = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if tar.len() + chunk.len() > max_bytes {
                    return Ok(false);
                }
                tar.extend_from_slice(&chunk);
            }
            Ok(true)
        };
        match bounded(Operation::Download, collect).await? {
            true => Ok(Download::Complete(tar)),
            false => Ok(Download::TooLarge),
        }
    }

    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        bounded(Operation::CreateVolume, self.docker.create_volume(request))
            .await
            .map(|_| ())
    }

    /// Creates a volume that is a tmpfs of `bytes`, owned by `owner` (`uid:gid`), mounted nosuid and nodev: a
    /// program directory that no build can grow past its limit, and that lives in memory rather than on disk.
    /// Creates a program volume: a tmpfs of `bytes`, with one inode per page of it, owned by the sandbox's `uid`.
    pub async fn create_program_volume(
        &self,
        name: &str,
        bytes: u64,
        uid: u32,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_owned(), "tmpfs".to_owned()),
                ("device".to_owned(), "tmpfs".to_owned()),
                (
                    "o".to_owned(),
                    format!(
                        "size={bytes},nr_inodes={},uid={uid},gid={uid},mode=0755,nosuid,nodev",
                        super::hardening::inode_bound(bytes)
                    ),
                ),
            ])),
            labels: Some(labels),
            ..Default::default()
        };
        bounded(Operation::CreateVolume, self.docker.create_volume(request))
            .await
            .map(|_| ())
    }

    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        found(bounded(Operation::InspectVolume, self.docker.inspect_volume(name)).await).map(|volume| volume.is_some())
    }

    /// Removes a volume. One already gone is not an error; one still in use is.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        gone_is_fine(bounded(Operation::RemoveVolume, self.docker.remove_volume(name, Some(options))).await)
    }

    /// Every container (running or not) carrying `label`.
    pub async fn containers_with_label(&self, label: &str) -> Result<Vec<Labelled>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let listed = bounded(Operation::ListContainers, self.docker.list_containers(Some(options))).await?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                Some(Labelled {
                    name: c.id?,
                    labels: c.labels.unwrap_or_default(),
                    stopped: matches!(
                        c.state,
                        Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD)
                    ),
                })
            })
            .collect())
    }

    pub async fn volumes_with_label(&self, label: &str) -> Result<Vec<Labelled>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let options = ListVolumesOptionsBuilder::default().filters(&filters).build();
        let listed = bounded(Operation::ListVolumes, self.docker.list_volumes(Some(options))).await?;
        Ok(listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Labelled {
                name: v.name,
                labels: v.labels,
                stopped: false,
            })
            .collect())
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.image_labels(image).await?.is_some())
    }

    /// The id of an image (the digest of its configuration), or `None` when it is not present.
    ///
    /// # Errors
    /// [`EngineError`] when the engine does not answer.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        Ok(self.image_labels(image).await?.map(|(id, _)| id))
    }

    /// The id and labels of an image, or `None` when it is not present.
    ///
    /// # Errors
    /// [`EngineError`] when the engine does not answer.
    pub async fn image_labels(&self, image: &str) -> Result<Option<(String, HashMap<String, String>)>, EngineError> {
        let inspected = found(bounded(Operation::InspectImage, self.docker.inspect_image(image)).await)?;
        Ok(inspected.and_then(|inspected| {
            let labels = inspected.config.and_then(|config| config.labels).unwrap_or_default();
            inspected.id.map(|id| (id, labels))
        }))
    }

    /// The engine's storage driver (`overlay2`, `fuse-overlayfs`, …), when it says.
    ///
    /// # Errors
    /// [`EngineError`] when the engine does not answer.
    pub async fn storage_driver(&self) -> Result<Option<String>, EngineError> {
        bounded(Operation::Info, self.docker.info())
            .await
            .map(|info| info.driver)
    }

    /// The names of the engine's OCI runtimes (`runc`, and any registered beside it, such as `runsc`), sorted.
    ///
    /// # Errors
    /// [`EngineError`] when the engine does not answer.
    pub async fn runtimes(&self) -> Result<Vec<String>, EngineError> {
        let info = bounded(Operation::Info, self.docker.info()).await?;
        let mut names: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        names.sort();
        Ok(names)
    }

    /// Pulls an image from its registry.
    ///
    /// # Errors
    /// [`EngineError`] with the registry's or the engine's refusal.
    pub async fn pull(&self, image: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        let pull = async {
            while let Some(step) = progress.next().await {
                step?;
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, pull).await {
            Err(_) => Err(EngineError::TimedOut {
                operation: Operation::Pull,
                after: timeout,
            }),
            Ok(result) => result.map_err(api(Operation::Pull)),
        }
    }
}

/// The outcome of a bounded download.
pub enum Download {
    Complete(Vec<u8>),
    TooLarge,
}

/// `call`, bounded by [`CALL_TIMEOUT`], its failure named by `operation`.
async fn bounded<T>(
    operation: Operation,
    call: impl Future<Output = Result<T, BollardError>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Err(EngineError::TimedOut {
            operation,
            after: CALL_TIMEOUT,
        }),
        Ok(result) => result.map_err(api(operation)),
    }
}

fn api(operation: Operation) -> impl Fn(BollardError) -> EngineError {
    move |source| EngineError::Api { operation, source }
}

/// A removal of something already gone succeeded.
fn gone_is_fine(removed: Result<(), EngineError>) -> Result<(), EngineError> {
    match removed {
        Err(error) if error.status() == Some(404) => Ok(()),
        other => other,
    }
}

/// An inspection of something absent finds nothing.
fn found<T>(inspected: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match inspected {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.status() == Some(404) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::describe;

    fn answered(status_code: u16) -> EngineError {
        EngineError::Api {
            operation: Operation::StartContainer,
            source: BollardError::DockerResponseServerError {
                status_code,
                message: "no".into(),
            },
        }
    }

    #[test]
    fn server_errors_and_silence_are_worth_retrying_and_client_errors_are_the_sandbox() {
        assert!(matches!(
            RuntimeError::from(answered(500)),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            RuntimeError::from(answered(503)),
            RuntimeError::Unavailable(_)
        ));
        let timed_out = EngineError::TimedOut {
            operation: Operation::Ping,
            after: CALL_TIMEOUT,
        };
        assert!(matches!(RuntimeError::from(timed_out), RuntimeError::Unavailable(_)));
        assert!(matches!(RuntimeError::from(answered(409)), RuntimeError::Sandbox(_)));
        assert!(matches!(RuntimeError::from(answered(400)), RuntimeError::Sandbox(_)));
    }

    #[test]
    fn a_missing_image_is_not_retried_and_the_operation_is_named() {
        let missing = EngineError::NoSuchImage {
            operation: Operation::CreateContainer,
            image: "nope:1".into(),
            source: BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such image: nope:1".into(),
            },
        };
        let error = RuntimeError::from(missing);
        assert!(!error.is_transient(), "{error}");
        assert!(matches!(error, RuntimeError::ImageMissing { ref image, .. } if image == "nope:1"));
        assert_eq!(
            describe(&error),
            "image \"nope:1\" is missing: create container: Docker responded with status code 404: No such image: nope:1"
        );
        assert_eq!(
            describe(&RuntimeError::from(answered(500))),
            "the sandbox engine is unavailable: start container: Docker responded with status code 500: no"
        );
    }
}
