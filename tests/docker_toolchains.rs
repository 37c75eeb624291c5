//! The warm toolchains of scrc's build images (README "Language images") on real Docker: what the image prepared
//! (Go's standard-library cache, javac's class-data archive, the precompiled C++ headers) changes no verdict, and no
//! build can change what the next one starts from.
//!
//! What the images guarantee by construction: the prepared files are root-owned in a read-only root filesystem and
//! builds run as uid 65534, and Go copies its cache into the build's private `/tmp`. What these tests add: a
//! failed build in between leaves the next build of a valid program OK, and g++ refuses a precompiled header that a
//! macro defined before it would have changed, so the program means what its source says.

mod support;

use scrc::domain::{Language, Status};
use std::collections::HashMap;

use support::*;

const SUM: [(&str, &str); 2] = [("2 3\n", "5\n"), ("-1 1\n", "0\n")];

/// (language, a source the compiler rejects, a valid sum program).
const PROGRAMS: [(Language, &str, &str); 3] = [
    (
        Language::Go,
        "package main\nfunc main() { undefined() }\n",
        "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);fmt.Println(a+b)}\n",
    ),
    (
        Language::Java,
        "public class Main { public static void main(String[] a) { undefined(); } }\n",
        "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);\
         System.out.println(s.nextLong()+s.nextLong());}}\n",
    ),
    (
        Language::Cpp,
        "#include <bits/stdc++.h>\nint main() { undefined(); }\n",
        "#include <bits/stdc++.h>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_leaves_the_next_build_of_each_warm_language_ok() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    for (language, broken, valid) in PROGRAMS {
        for round in 0..2 {
            let failed = judged(&judge, &script(language, broken, &SUM)).await;
            assert_eq!(failed.status, Status::BuildFailure, "{language} {round}: {failed:#?}");
            let diagnostics = String::from_utf8_lossy(&failed.stderr);
            assert!(
                diagnostics.contains("undefined"),
                "{language}: the compiler's own diagnostic, not the toolchain's set-up: {diagnostics}"
            );
            let ok = judged(&judge, &script(language, valid, &SUM)).await;
            assert_eq!(ok.status, Status::Ok, "{language} {round}: {ok:#?}");
        }
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_macro_defined_before_a_precompiled_header_still_shapes_the_program() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // Each macro changes what the header declares; the image's headers were precompiled without it, so using them
    // would print the other word.
    let programs = [
        (
            "#define _GLIBCXX_DEBUG\n#include <bits/stdc++.h>\nint main() {\n\
             std::string name = typeid(std::vector<int>).name();\n\
             std::cout << (name.find(\"__debug\") != std::string::npos ? \"debug\" : \"release\") << \"\\n\";\n}\n",
            "debug\n",
        ),
        (
            "#define _GLIBCXX_USE_CXX11_ABI 0\n#include <iostream>\n#include <typeinfo>\nint main() {\n\
             std::string name = typeid(std::string).name();\n\
             std::cout << (name.find(\"__cxx11\") == std::string::npos ? \"old\" : \"new\") << \"\\n\";\n}\n",
            "old\n",
        ),
        (
            "#include <bits/stdc++.h>\nint main() {\n\
             std::string name = typeid(std::vector<int>).name();\n\
             std::cout << (name.find(\"__debug\") != std::string::npos ? \"debug\" : \"release\") << \"\\n\";\n}\n",
            "release\n",
        ),
    ];
    for (source, expected) in programs {
        let report = judged(&judge, &script(Language::Cpp, source, &[("", expected)])).await;
        assert_eq!(report.status, Status::Ok, "{source}: {report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// The names of the volumes the containers of `instance` mount from a shared toolchain set, with each mount's
/// target and whether it is writable, and whether every such container was created from an image id.
async fn toolchain_mounts(docker: &bollard::Docker, instance: &str) -> (Vec<(String, String, bool)>, bool) {
    let filters = HashMap::from([("label".to_owned(), vec![format!("scrc.instance={instance}")])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let mut mounts = Vec::new();
    let mut by_id = true;
    for summary in docker.list_containers(Some(options)).await.expect("list") {
        let Ok(inspected) = docker
            .inspect_container(summary.id.as_deref().unwrap_or_default(), None)
            .await
        else {
            continue; // removed meanwhile
        };
        let image = inspected.config.as_ref().and_then(|config| config.image.clone());
        for mount in inspected.mounts.unwrap_or_default() {
            let name = mount.name.clone().unwrap_or_default();
            if name.starts_with("scrc-tc-") {
                by_id &= image.as_deref().is_some_and(|image| image.starts_with("sha256:"));
                mounts.push((name, mount.destination.unwrap_or_default(), mount.rw != Some(false)));
            }
        }
    }
    (mounts, by_id)
}

/// The toolchain volumes on the engine for `image_id`, by name, with their labels.
async fn set_of(docker: &bollard::Docker, image_id: &str) -> HashMap<String, HashMap<String, String>> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("scrc.toolchain.image={image_id}")])]);
    let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    (docker.list_volumes(Some(options)).await.expect("list volumes").volumes)
        .unwrap_or_default()
        .into_iter()
        .map(|volume| (volume.name, volume.labels))
        .collect()
}

/// With `RUNNER_SHARED_TOOLCHAINS=false`, every sandbox reads its image's own files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_option_off_no_toolchain_directory_is_shared() {
    let Some((judge, config)) = judge(&[("RUNNER_SHARED_TOOLCHAINS", "false")]).await else {
        return;
    };
    let (language, _, valid) = &PROGRAMS[0];
    let ok = judged(&judge, &script(*language, valid, &SUM)).await;
    assert_eq!(ok.status, Status::Ok, "{language}: {ok:#?}");
    let docker = bollard::Docker::connect_with_unix_defaults().expect("Docker");
    let (mounts, _) = toolchain_mounts(&docker, &config.instance).await;
    assert!(mounts.is_empty(), "{mounts:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// By default, on a storage driver whose containers do not share the image's page cache, the Go and Java build
/// images' toolchain directories come from the engine's one set of volumes per image, copied from the image once
/// and mounted read-only into every pooled sandbox of the image; on overlay2 nothing is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolchain_directories_are_shared_read_only_only_where_the_page_cache_is_not() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    for (language, _, valid) in &PROGRAMS[..2] {
        let ok = judged(&judge, &script(*language, valid, &SUM)).await;
        assert_eq!(ok.status, Status::Ok, "{language}: {ok:#?}");
    }
    let docker = bollard::Docker::connect_with_unix_defaults().expect("Docker");
    let driver = docker.info().await.expect("info").driver.unwrap_or_default();
    let (mounts, by_id) = toolchain_mounts(&docker, &config.instance).await;
    if driver == "overlay2" {
        assert!(mounts.is_empty(), "overlay2 shares the page cache: {mounts:?}");
        assert_clean_and_serving(&judge, &config.instance).await;
        return;
    }
    assert!(
        by_id,
        "a sandbox with shared directories is created from its image's id"
    );
    assert!(
        mounts.iter().all(|(_, _, writable)| !writable),
        "every shared directory is read-only: {mounts:?}"
    );
    // The pool keeps sandboxes of both images started: each mounts the named set of its image.
    let targets: std::collections::BTreeSet<&str> = mounts.iter().map(|(_, target, _)| target.as_str()).collect();
    for dir in ["/usr/lib/go-1.19", "/usr/share/go-1.19", "/usr/lib/jvm", "/opt/scrc"] {
        assert!(targets.contains(dir), "no sandbox mounts {dir}: {mounts:?}");
    }
    for (_, image) in [("GO_IMAGE", "go"), ("JAVA_IMAGE", "jdk")] {
        let id = config
            .docker
            .toolchains
            .values()
            .find(|toolchain| toolchain.build_image.contains(&format!("/{image}:")))
            .map(|toolchain| toolchain.build_image.clone())
            .expect("the local build image");
        let id = docker.inspect_image(&id).await.expect("inspect").id.expect("an id");
        let set = set_of(&docker, &id).await;
        let marker = set
            .iter()
            .find(|(_, labels)| labels.get("scrc.role").map(String::as_str) == Some("toolchain-marker"))
            .expect("the image's set is named");
        let named = marker.1.get("scrc.toolchain.set").expect("the marker names a set");
        for (name, _, _) in mounts.iter().filter(|(name, _, _)| set.contains_key(name)) {
            assert!(name.contains(named.as_str()), "{name} is not of the named set {named}");
        }
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Runners on one engine that all want an image's set at once make one between them: the filler's name admits one
/// runner at a time, every runner mounts the set the marker names, and it is complete when named. A sweep leaves
/// nothing else of it, and removes it all once its image is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runners_on_one_engine_share_one_complete_set_per_image_and_the_reaper_removes_it_with_its_image() {
    use scrc::adapters::docker::{engine::Engine, reaper, shared_dirs::SharedDirs};
    let Some(engine) = (match Engine::connect(None).await {
        Ok(engine) => Some(engine),
        Err(error) => {
            assert!(!in_ci(), "CI=true and no Docker engine: {error}");
            None
        }
    }) else {
        return;
    };
    let docker = bollard::Docker::connect_with_unix_defaults().expect("Docker");
    if docker.info().await.expect("info").driver.as_deref() == Some("overlay2") {
        return; // nothing is shared there; the test above proves it
    }
    // An image of its own, so that its set is this test's alone: Python's image with a unique label.
    let base = local_images()
        .into_iter()
        .find(|(name, _)| name == "PYTHON_IMAGE")
        .map(|(_, image)| image)
        .expect("PYTHON_IMAGE in images/local.env");
    let tag = format!("scrc-test/shared-dirs:{}", unique());
    let source = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(base),
                cmd: Some(vec!["/nonexistent".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("create the image's source")
        .id;
    let (repo, version) = tag.split_once(':').expect("a tag");
    let committed = docker
        .commit_container(
            bollard::query_parameters::CommitContainerOptionsBuilder::default()
                .container(&source)
                .repo(repo)
                .tag(version)
                .build(),
            bollard::models::ContainerConfig {
                labels: Some(HashMap::from([
                    (
                        "org.scrc.shared-dirs".to_owned(),
                        "/usr/lib/python3.11/json:/usr/lib/python3.11/email".to_owned(),
                    ),
                    ("org.scrc.test".to_owned(), tag.clone()),
                ])),
                ..Default::default()
            },
        )
        .await
        .expect("commit");
    let _ = docker.remove_container(&source, None).await;
    let id = committed.id;

    let runners: Vec<SharedDirs> = (0..6)
        .map(|n| SharedDirs::new(engine.clone(), format!("shared-dirs-test-{n}"), true))
        .collect();
    let mut found = Vec::new();
    for _ in 0..20 {
        let asked = futures::future::join_all(runners.iter().map(|runner| runner.for_image(&tag))).await;
        found = asked.into_iter().map(|mounts| mounts.expect("for_image")).collect();
        // A runner that met another's fill shares nothing for now and looks again shortly.
        if found.iter().all(|mounts| !mounts.volumes.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let first = &found[0];
    assert_eq!(first.image, id, "sandboxes of a shared image are created from its id");
    assert_eq!(first.volumes.len(), 2, "{first:?}");
    assert!(first.volumes.iter().all(|volume| volume.read_only));
    assert!(
        found.iter().all(|mounts| mounts == first),
        "one set for all: {found:#?}"
    );

    reaper::sweep(&engine, None).await;
    let set = set_of(&docker, &id).await;
    let mut expected: Vec<String> = first.volumes.iter().map(|volume| volume.volume.clone()).collect();
    let marker = format!("scrc-tc-{}", &id.trim_start_matches("sha256:")[..12]);
    expected.push(marker.clone());
    expected.sort();
    let mut names: Vec<String> = set.keys().cloned().collect();
    names.sort();
    assert_eq!(names, expected, "the named set and its marker, and nothing else");
    let fillers = engine.containers_with_label("scrc.role=filler").await.expect("list");
    assert!(
        fillers.iter().all(|filler| !filler
            .labels
            .get("scrc.instance")
            .is_some_and(|i| i.starts_with("shared-dirs-test-"))),
        "no filler is left"
    );

    // Complete when named: the copy holds the image's files.
    let reader = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            scrc::adapters::docker::hardening::filler(&id, &first.volumes, HashMap::new()),
        )
        .await
        .expect("create a reader")
        .id;
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path("/usr/lib/python3.11/json/__init__.py")
        .build();
    let tar: Vec<u8> = futures::TryStreamExt::try_concat(futures::TryStreamExt::map_ok(
        docker.download_from_container(&reader, Some(options)),
        |bytes| bytes.to_vec(),
    ))
    .await
    .expect("the shared copy holds the image's file");
    let _ = docker.remove_container(&reader, None).await;
    assert!(
        String::from_utf8_lossy(&tar).contains("JSON"),
        "json/__init__.py is the image's own"
    );

    drop(runners);
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    docker
        .remove_image(&tag, Some(options), None)
        .await
        .expect("remove the image");
    reaper::sweep(&engine, None).await;
    assert!(
        set_of(&docker, &id).await.is_empty(),
        "the set of a removed image is swept"
    );
}
