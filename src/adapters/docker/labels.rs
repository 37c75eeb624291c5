//! The labels on every container and volume scrc creates. They are how the reaper finds what a crashed runner
//! left behind, and how an operator finds which runner a container belongs to.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Present on everything scrc creates.
pub const MANAGED: &str = "scrc.managed";
/// The runner instance that created it.
pub const INSTANCE: &str = "scrc.instance";
/// What it is: `warm` (a sandbox), `filler`, `guard`, `toolchain` or `toolchain-marker`.
pub const ROLE: &str = "scrc.role";
/// The role of a warm sandbox: a pre-started container whose supervisor serves one script.
pub const WARM: &str = "warm";
/// The uid a sandbox runs as, so that runners sharing an engine never give two live sandboxes one.
pub const UID: &str = "scrc.uid";
/// Unix seconds after which no live runner can still need it.
pub const EXPIRES: &str = "scrc.expires";
/// The image id whose toolchain directories a volume copies.
pub const TOOLCHAIN_IMAGE: &str = "scrc.toolchain.image";
/// The fill a toolchain volume belongs to; on the image's marker, the set its sandboxes mount.
pub const TOOLCHAIN_SET: &str = "scrc.toolchain.set";
/// How many volumes the set holds.
pub const TOOLCHAIN_VOLUMES: &str = "scrc.toolchain.volumes";

/// Labels of a warm sandbox: it belongs to no script until one takes it, and it is never handed to a second.
pub fn for_warm(instance: &str, expires: SystemTime) -> HashMap<String, String> {
    of_instance(instance, WARM, expires)
}

/// Labels of a sandbox container, which runs as `uid`.
pub fn for_sandbox(instance: &str, expires: SystemTime, uid: u32) -> HashMap<String, String> {
    let mut labels = for_warm(instance, expires);
    labels.insert(UID.to_owned(), uid.to_string());
    labels
}

/// Labels of a volume holding a copy of one toolchain directory of the image `image_id` (see `shared_dirs`): one of
/// the `volumes` of the set `set`, shared by every runner on the engine, with no instance and no expiry.
pub fn for_toolchain(image_id: &str, set: &str, volumes: usize) -> HashMap<String, String> {
    HashMap::from([
        (MANAGED.to_owned(), "1".to_owned()),
        (ROLE.to_owned(), "toolchain".to_owned()),
        (TOOLCHAIN_IMAGE.to_owned(), image_id.to_owned()),
        (TOOLCHAIN_SET.to_owned(), set.to_owned()),
        (TOOLCHAIN_VOLUMES.to_owned(), volumes.to_string()),
    ])
}

/// Labels of the volume that names an image's complete toolchain set: the set's own labels, with its role.
pub fn for_toolchain_marker(mut set_labels: HashMap<String, String>) -> HashMap<String, String> {
    set_labels.insert(ROLE.to_owned(), "toolchain-marker".to_owned());
    set_labels
}

/// How long a filler may be left before any runner's reaper removes it: filling takes a second or two, and only a
/// runner killed meanwhile leaves one.
pub const FILLER_LIFETIME: Duration = Duration::from_secs(300);

/// Labels of a container that is created only to fill volumes and removed at once. It carries its instance and an
/// expiry all the same, so that a runner killed between the two steps leaves nothing the reaper cannot find.
pub fn for_filler(instance: &str) -> HashMap<String, String> {
    of_instance(instance, "filler", SystemTime::now() + FILLER_LIFETIME)
}

/// Labels of what belongs to an instance but to no script.
fn of_instance(instance: &str, role: &str, expires: SystemTime) -> HashMap<String, String> {
    let expires = expires.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    HashMap::from([
        (MANAGED.to_owned(), "1".to_owned()),
        (INSTANCE.to_owned(), instance.to_owned()),
        (ROLE.to_owned(), role.to_owned()),
        (EXPIRES.to_owned(), expires.to_string()),
    ])
}

/// Labels of the volume holding the supervisor for sandboxes: shared by every runner of one scrc version on
/// an engine, so it has no instance and no expiry, and the reaper leaves it alone.
pub fn for_guard_volume() -> HashMap<String, String> {
    HashMap::from([
        (MANAGED.to_owned(), "1".to_owned()),
        (ROLE.to_owned(), "guard".to_owned()),
    ])
}

/// Whether a resource with these labels has outlived its expiry at `now`.
pub fn expired(labels: &HashMap<String, String>, now: SystemTime) -> bool {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    labels
        .get(EXPIRES)
        .and_then(|expires| expires.parse::<u64>().ok())
        .is_some_and(|expires| expires < now)
}
