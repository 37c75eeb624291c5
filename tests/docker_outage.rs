//! The Docker engine failing under the runner. The engine is reached through a Unix-socket proxy that the test can
//! cut and restore, so the real daemon is never harmed. A cut engine must give IE after bounded retries (never OK
//! or WA), open the circuit breaker, and let the runner recover when the engine comes back. A missing image must
//! give IE naming the image.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scrc::domain::{Language, Status};
use support::*;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

struct Proxy {
    path: PathBuf,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    fn start() -> Self {
        let path = std::env::temp_dir().join(format!("scrc-docker-proxy-{}.sock", unique()));
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accepting, tasks) = (Arc::clone(&open), Arc::clone(&links));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
                tasks.lock().await.push(link);
            }
        });
        Self { path, open, links }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Refuses new connections and breaks the open ones: to the runner, the engine is dead.
    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hello() -> scrc::domain::Script {
    script(Language::Python, "print('hello')\n", &[("", "hello\n")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_engine_gives_ie_opens_the_breaker_and_the_runner_recovers() {
    let proxy = Proxy::start();
    let host = proxy.host();
    let Some((judge, config)) = judge(&[
        ("DOCKER_HOST", &host),
        ("RUNNER_BREAKER_THRESHOLD", "2"),
        ("RUNNER_BREAKER_COOL_DOWN", "2s"),
    ])
    .await
    else {
        return;
    };
    assert_eq!(judged(&judge, &hello()).await.status, Status::Ok);

    proxy.cut().await;
    let started = Instant::now();
    let report = judged(&judge, &hello()).await;
    assert_eq!(
        report.status,
        Status::InternalError,
        "an infrastructure failure is never OK or WA: {report:#?}"
    );
    assert!(report.error.contains("unavailable"), "{}", report.error);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries are bounded: {:?}",
        started.elapsed()
    );
    assert!(judge.breaker().open_until().is_some(), "the breaker is open");

    proxy.restore();
    judge.breaker().wait_until_allowed().await;
    let report = judged(&judge, &hello()).await;
    assert_eq!(
        report.status,
        Status::Ok,
        "the runner recovers with the engine: {report:#?}"
    );
    assert!(judge.breaker().open_until().is_none(), "a success closes the breaker");
    assert_eq!(busy_leftovers(judge.runtime(), &config.instance).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_gives_ie_naming_the_image() {
    let Some((judge, config)) = judge(&[("PYTHON_IMAGE", "scrc-local/no-such-python:0")]).await else {
        return;
    };
    let report = judged(&judge, &hello()).await;
    assert_eq!(report.status, Status::InternalError, "{report:#?}");
    assert!(report.error.contains("scrc-local/no-such-python:0"), "{}", report.error);
    assert!(report.error.contains("missing"), "{}", report.error);
    let other = judged(&judge, &script(Language::C, "int main(void){return 0;}\n", &[("", "")])).await;
    assert_eq!(other.status, Status::Ok, "other languages keep working");
    assert_eq!(busy_leftovers(judge.runtime(), &config.instance).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_at_startup_is_a_clear_error() {
    let config = config(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    let error = scrc::adapters::docker::DockerRuntime::start(config.docker)
        .await
        .err()
        .expect("no engine there");
    assert!(error.to_string().contains("unavailable"), "{error}");
}
