//! A thin wrapper over bollard: one method per Docker operation the sandbox uses, each bounded by a timeout and
//! translating bollard's errors into the runtime's vocabulary. Nothing here knows about scripts or languages.

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

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// A container or volume scrc created, as listed by label.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub name: String,
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
    /// [`RuntimeError::Unavailable`] when the engine cannot be reached or `host` is not understood.
    pub async fn connect(host: Option<&str>) -> Result<Self, RuntimeError> {
        const CLIENT_TIMEOUT: u64 = 120;
        let docker = match host {
            None => Docker::connect_with_unix_defaults(),
            Some(host) if host.starts_with("unix://") => {
                Docker::connect_with_unix(host, CLIENT_TIMEOUT, bollard::API_DEFAULT_VERSION)
            }
            Some(host) if host.starts_with("tcp://") || host.starts_with("http://") => {
                Docker::connect_with_http(host, CLIENT_TIMEOUT, bollard::API_DEFAULT_VERSION)
            }
            Some(other) => {
                return Err(RuntimeError::Unavailable(format!(
                    "DOCKER_HOST {other:?} is not supported: use unix://, tcp:// or http://"
                )));
            }
        }
        .map_err(unavailable("connect"))?;
        let docker = tokio::time::timeout(CALL_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| RuntimeError::Unavailable("the Docker engine did not answer within 30 s".into()))?
            .map_err(unavailable("negotiate the API version"))?;
        Ok(Self { docker })
    }

    pub async fn ping(&self) -> Result<(), RuntimeError> {
        bounded("ping", self.docker.ping()).await.map(|_| ())
    }

    pub async fn create_container(&self, name: &str, body: ContainerCreateBody) -> Result<String, RuntimeError> {
        let image = body.image.clone().unwrap_or_default();
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.create_container(Some(options), body)).await {
            Err(_) => Err(RuntimeError::Unavailable("create container: timed out".into())),
            Ok(Ok(created)) => Ok(created.id),
            Ok(Err(BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            })) => Err(RuntimeError::ImageMissing { image, detail: message }),
            Ok(Err(error)) => Err(classify("create container", error)),
        }
    }

    pub async fn attach(&self, id: &str) -> Result<AttachContainerResults, RuntimeError> {
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        bounded("attach", self.docker.attach_container(id, Some(options))).await
    }

    /// Sets a container's memory limit, with swap equal to it (as [`super::hardening`] does).
    pub async fn update_memory(&self, id: &str, bytes: u64) -> Result<(), RuntimeError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let body = ContainerUpdateBody {
            memory: Some(bytes),
            memory_swap: Some(bytes),
            ..Default::default()
        };
        bounded("update container", self.docker.update_container(id, body)).await
    }

    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        bounded("start container", self.docker.start_container(id, None)).await
    }

    /// Sends SIGKILL. A container that already stopped is not an error.
    pub async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        let options = KillContainerOptionsBuilder::default().signal("KILL").build();
        match bounded("kill container", self.docker.kill_container(id, Some(options))).await {
            Err(RuntimeError::Sandbox(message)) if message.contains("is not running") => Ok(()),
            other => other,
        }
    }

    /// Waits until the container is not running and returns its exit code.
    pub async fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<i64, RuntimeError> {
        let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut stream = self.docker.wait_container(id, Some(options));
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => Err(RuntimeError::Unavailable("wait for container: timed out".into())),
            Ok(None) => Err(RuntimeError::Unavailable("wait for container: no answer".into())),
            Ok(Some(Ok(response))) => Ok(response.status_code),
            Ok(Some(Err(BollardError::DockerContainerWaitError { code, .. }))) => Ok(code),
            Ok(Some(Err(error))) => Err(classify("wait for container", error)),
        }
    }

    pub async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let inspected = bounded("inspect container", self.docker.inspect_container(id, None)).await?;
        inspected
            .state
            .ok_or_else(|| RuntimeError::Sandbox("inspect container: no state".into()))
    }

    /// Removes a container and whatever it holds, running or not. A container already gone is not an error, nor
    /// one whose removal is already under way (the engine answers 409 "removal ... is already in progress" when,
    /// say, the reaper meets a container the pool is removing in the background): either way it is going.
    pub async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.remove_container(id, Some(options))).await {
            Err(_) => Err(RuntimeError::Unavailable("remove container: timed out".into())),
            Ok(Ok(())) | Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => Ok(()),
            Ok(Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            })) if message.contains("already in progress") => Ok(()),
            Ok(Err(error)) => Err(classify("remove container", error)),
        }
    }

    pub async fn upload(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), RuntimeError> {
        let options = UploadToContainerOptionsBuilder::default().path(path).build();
        bounded(
            "upload to container",
            self.docker
                .upload_to_container(id, Some(options), bollard::body_full(tar.into())),
        )
        .await
    }

    /// Downloads `path` as a tar archive, refusing more than `max_bytes`.
    pub async fn download(&self, id: &str, path: &str, max_bytes: usize) -> Result<Download, RuntimeError> {
        let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut tar = Vec::new();
        let collect = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| classify("download from container", e))?;
                if tar.len() + chunk.len() > max_bytes {
                    return Ok(false);
                }
                tar.extend_from_slice(&chunk);
            }
            Ok(true)
        };
        match tokio::time::timeout(CALL_TIMEOUT, collect).await {
            Err(_) => Err(RuntimeError::Unavailable("download from container: timed out".into())),
            Ok(Err(error)) => Err(error),
            Ok(Ok(true)) => Ok(Download::Complete(tar)),
            Ok(Ok(false)) => Ok(Download::TooLarge),
        }
    }

    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<(), RuntimeError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        bounded("create volume", self.docker.create_volume(request))
            .await
            .map(|_| ())
    }

    /// Creates a volume that is a tmpfs of `bytes`, owned by `owner` (`uid:gid`), mounted nosuid and nodev: a
    /// program directory that no build can grow past its limit, and that lives in memory rather than on disk.
    pub async fn create_program_volume(
        &self,
        name: &str,
        bytes: u64,
        owner: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let (uid, gid) = owner.split_once(':').unwrap_or((owner, owner));
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_owned(), "tmpfs".to_owned()),
                ("device".to_owned(), "tmpfs".to_owned()),
                (
                    "o".to_owned(),
                    format!("size={bytes},uid={uid},gid={gid},mode=0755,nosuid,nodev"),
                ),
            ])),
            labels: Some(labels),
            ..Default::default()
        };
        bounded("create volume", self.docker.create_volume(request))
            .await
            .map(|_| ())
    }

    pub async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.inspect_volume(name)).await {
            Err(_) => Err(RuntimeError::Unavailable("inspect volume: timed out".into())),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => Ok(false),
            Ok(Err(error)) => Err(classify("inspect volume", error)),
        }
    }

    /// Removes a volume. One already gone is not an error; one still in use is.
    pub async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.remove_volume(name, Some(options))).await {
            Err(_) => Err(RuntimeError::Unavailable("remove volume: timed out".into())),
            Ok(Ok(())) | Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => Ok(()),
            Ok(Err(error)) => Err(classify("remove volume", error)),
        }
    }

    /// Every container (running or not) carrying `label`.
    pub async fn containers_with_label(&self, label: &str) -> Result<Vec<Labelled>, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let listed = bounded("list containers", self.docker.list_containers(Some(options))).await?;
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

    pub async fn volumes_with_label(&self, label: &str) -> Result<Vec<Labelled>, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let options = ListVolumesOptionsBuilder::default().filters(&filters).build();
        let listed = bounded("list volumes", self.docker.list_volumes(Some(options))).await?;
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

    pub async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.inspect_image(image)).await {
            Err(_) => Err(RuntimeError::Unavailable("inspect image: timed out".into())),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => Ok(false),
            Ok(Err(error)) => Err(classify("inspect image", error)),
        }
    }

    /// The id of an image (the digest of its configuration), or `None` when it is not present.
    ///
    /// # Errors
    /// [`RuntimeError::Unavailable`] when the engine does not answer.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.docker.inspect_image(image)).await {
            Err(_) => Err(RuntimeError::Unavailable("inspect image: timed out".into())),
            Ok(Ok(inspected)) => Ok(inspected.id),
            Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => Ok(None),
            Ok(Err(error)) => Err(classify("inspect image", error)),
        }
    }

    /// Pulls an image from its registry.
    ///
    /// # Errors
    /// The registry's or the engine's refusal, as text.
    pub async fn pull(&self, image: &str, timeout: Duration) -> Result<(), String> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        let pull = async {
            while let Some(step) = progress.next().await {
                step.map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        tokio::time::timeout(timeout, pull)
            .await
            .map_err(|_| format!("no answer from the registry within {} s", timeout.as_secs()))?
    }
}

/// The outcome of a bounded download.
pub enum Download {
    Complete(Vec<u8>),
    TooLarge,
}

async fn bounded<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, BollardError>>,
) -> Result<T, RuntimeError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Err(RuntimeError::Unavailable(format!("{what}: timed out"))),
        Ok(result) => result.map_err(|error| classify(what, error)),
    }
}

fn unavailable(what: &'static str) -> impl Fn(BollardError) -> RuntimeError {
    move |error| RuntimeError::Unavailable(format!("{what}: {error}"))
}

/// Server errors and transport failures mean the engine is unwell (retry); client errors mean this request is
/// wrong for this container (a fresh attempt in a fresh container may still work).
fn classify(what: &str, error: BollardError) -> RuntimeError {
    match error {
        BollardError::DockerResponseServerError { status_code, message } if status_code >= 500 => {
            RuntimeError::Unavailable(format!("{what}: {message}"))
        }
        BollardError::DockerResponseServerError { message, .. } => RuntimeError::Sandbox(format!("{what}: {message}")),
        other => RuntimeError::Unavailable(format!("{what}: {other}")),
    }
}
