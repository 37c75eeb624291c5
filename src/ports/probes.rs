//! What the HTTP probes ask of the runner (`/healthz`, `/readyz`): whether it is live, and whether it is ready to
//! judge. The runner's health reporter answers; the listener only asks, so it knows nothing of what is checked.

pub trait Probes: Send + Sync + 'static {
    /// Why the runner is not live (its health checks stopped ticking: it hangs), or `None` when it is.
    fn why_not_live(&self) -> Option<String>;

    /// Why the runner is not ready to take scripts, or `None` when it is.
    fn why_not_ready(&self) -> Option<String>;
}
