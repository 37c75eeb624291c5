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

/// The toolchain volumes of `instance` (README "Language images": shared toolchain directories).
async fn toolchain_volumes(docker: &bollard::Docker, instance: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![instance.to_owned(), "scrc.role=toolchain".to_owned()],
    )]);
    let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    (docker.list_volumes(Some(options)).await.expect("list volumes").volumes)
        .unwrap_or_default()
        .into_iter()
        .map(|volume| volume.name)
        .collect()
}

/// Off by default (`RUNNER_SHARED_TOOLCHAINS`): every sandbox reads its image's own files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_toolchain_directory_is_shared() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let (language, _, valid) = &PROGRAMS[0];
    let ok = judged(&judge, &script(*language, valid, &SUM)).await;
    assert_eq!(ok.status, Status::Ok, "{language}: {ok:#?}");
    let docker = bollard::Docker::connect_with_unix_defaults().expect("Docker");
    let volumes = toolchain_volumes(&docker, &format!("scrc.instance={}", config.instance)).await;
    assert!(volumes.is_empty(), "{volumes:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// With `RUNNER_SHARED_TOOLCHAINS=true`, on a storage driver whose containers do not share the image's page cache,
/// the Go and Java build images' toolchain directories come from volumes of this instance, copied from the image
/// once and mounted read-only into every pooled sandbox of the image; on overlay2, and on the fresh path, nothing
/// is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolchain_directories_are_shared_read_only_only_where_the_page_cache_is_not() {
    let Some((judge, config)) = judge(&[("RUNNER_SHARED_TOOLCHAINS", "true")]).await else {
        return;
    };
    for (language, _, valid) in &PROGRAMS[..2] {
        let ok = judged(&judge, &script(*language, valid, &SUM)).await;
        assert_eq!(ok.status, Status::Ok, "{language}: {ok:#?}");
    }
    let docker = bollard::Docker::connect_with_unix_defaults().expect("Docker");
    let driver = docker.info().await.expect("info").driver.unwrap_or_default();
    let instance = format!("scrc.instance={}", config.instance);
    let volumes = toolchain_volumes(&docker, &instance).await;
    let warm = config.docker.sandbox.mode == scrc::adapters::docker::sandbox::SandboxMode::Warm;
    if driver == "overlay2" || !warm {
        assert!(
            volumes.is_empty(),
            "overlay2 shares the page cache, and the fresh path shares nothing: {volumes:?}"
        );
        assert_clean_and_serving(&judge, &config.instance).await;
        return;
    }
    // Go's root, its source and its prepared cache; the JDK and javac's archive.
    assert_eq!(volumes.len(), 5, "{volumes:?}");
    // The pool keeps sandboxes of both images started: each mounts every volume of its image, read-only.
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![instance.clone()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let mut checked = std::collections::BTreeSet::new();
    for summary in docker.list_containers(Some(options)).await.expect("list") {
        let inspected = docker
            .inspect_container(summary.id.as_deref().unwrap_or_default(), None)
            .await
            .expect("inspect");
        let mounts = inspected.mounts.unwrap_or_default();
        for mount in &mounts {
            let name = mount.name.clone().unwrap_or_default();
            if !volumes.contains(&name) {
                continue;
            }
            assert_eq!(mount.rw, Some(false), "{name} is writable: {mount:?}");
            let destination = mount.destination.clone().unwrap_or_default();
            let image = inspected.config.as_ref().and_then(|config| config.image.as_deref());
            assert!(
                image.is_some_and(|image| image.starts_with("sha256:")),
                "a sandbox with shared directories is created from its image's id"
            );
            checked.insert(destination);
        }
    }
    for dir in ["/usr/lib/go-1.19", "/usr/share/go-1.19", "/usr/lib/jvm", "/opt/scrc"] {
        assert!(checked.contains(dir), "no sandbox mounts {dir}: {checked:?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
    // A set is about 750 MB: leave none behind for the rest of the suite.
    drop(judge);
    let engine = scrc::adapters::docker::engine::Engine::connect(None)
        .await
        .expect("Docker");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !toolchain_volumes(&docker, &instance).await.is_empty() && std::time::Instant::now() < deadline {
        scrc::adapters::docker::reaper::sweep(&engine, Some(&config.instance)).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
