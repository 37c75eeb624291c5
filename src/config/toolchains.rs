//! The per-language table: each language's build image, run image and working directory, as SCRC names them
//! (`PYTHON_IMAGE`, `GO_RUN_IMAGE`, `JAVA_WORKDIR`, ...).

use std::collections::BTreeMap;

use super::env::Env;
use super::{ConfigError, invalid};
use crate::adapters::docker::languages::Toolchain;
use crate::domain::Language;

/// Every language's toolchain. A language without a run image of its own (Python, JavaScript, Ruby, PHP) runs in
/// its build image.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the first empty image or relative working directory.
pub(super) fn toolchains(env: &Env) -> Result<BTreeMap<Language, Toolchain>, ConfigError> {
    let mut toolchains = BTreeMap::new();
    for (language, build_image, run_image, workdir, names) in [
        (
            Language::Python,
            &env.python_image,
            env.python_run_image.as_ref().unwrap_or(&env.python_image),
            &env.python_workdir,
            ["PYTHON_IMAGE", "PYTHON_RUN_IMAGE", "PYTHON_WORKDIR"],
        ),
        (
            Language::Go,
            &env.go_image,
            &env.go_run_image,
            &env.go_workdir,
            ["GO_IMAGE", "GO_RUN_IMAGE", "GO_WORKDIR"],
        ),
        (
            Language::C,
            &env.c_image,
            &env.c_run_image,
            &env.c_workdir,
            ["C_IMAGE", "C_RUN_IMAGE", "C_WORKDIR"],
        ),
        (
            Language::Cpp,
            &env.cpp_image,
            &env.cpp_run_image,
            &env.cpp_workdir,
            ["CPP_IMAGE", "CPP_RUN_IMAGE", "CPP_WORKDIR"],
        ),
        (
            Language::Java,
            &env.java_image,
            &env.java_run_image,
            &env.java_workdir,
            ["JAVA_IMAGE", "JAVA_RUN_IMAGE", "JAVA_WORKDIR"],
        ),
        (
            Language::JavaScript,
            &env.javascript_image,
            env.javascript_run_image.as_ref().unwrap_or(&env.javascript_image),
            &env.javascript_workdir,
            ["JAVASCRIPT_IMAGE", "JAVASCRIPT_RUN_IMAGE", "JAVASCRIPT_WORKDIR"],
        ),
        (
            Language::Ruby,
            &env.ruby_image,
            env.ruby_run_image.as_ref().unwrap_or(&env.ruby_image),
            &env.ruby_workdir,
            ["RUBY_IMAGE", "RUBY_RUN_IMAGE", "RUBY_WORKDIR"],
        ),
        (
            Language::Php,
            &env.php_image,
            env.php_run_image.as_ref().unwrap_or(&env.php_image),
            &env.php_workdir,
            ["PHP_IMAGE", "PHP_RUN_IMAGE", "PHP_WORKDIR"],
        ),
        (
            Language::Rust,
            &env.rust_image,
            &env.rust_run_image,
            &env.rust_workdir,
            ["RUST_IMAGE", "RUST_RUN_IMAGE", "RUST_WORKDIR"],
        ),
        (
            Language::TypeScript,
            &env.typescript_image,
            &env.typescript_run_image,
            &env.typescript_workdir,
            ["TYPESCRIPT_IMAGE", "TYPESCRIPT_RUN_IMAGE", "TYPESCRIPT_WORKDIR"],
        ),
        (
            Language::Kotlin,
            &env.kotlin_image,
            &env.kotlin_run_image,
            &env.kotlin_workdir,
            ["KOTLIN_IMAGE", "KOTLIN_RUN_IMAGE", "KOTLIN_WORKDIR"],
        ),
        (
            Language::CSharp,
            &env.csharp_image,
            &env.csharp_run_image,
            &env.csharp_workdir,
            ["CSHARP_IMAGE", "CSHARP_RUN_IMAGE", "CSHARP_WORKDIR"],
        ),
    ] {
        toolchains.insert(language, toolchain(build_image, run_image, workdir, names)?);
    }
    Ok(toolchains)
}

/// One language's toolchain, its variables' `names` given in the order build image, run image, working directory.
fn toolchain(
    build_image: &str,
    run_image: &str,
    workdir: &str,
    names: [&'static str; 3],
) -> Result<Toolchain, ConfigError> {
    for (name, value) in names.into_iter().zip([build_image, run_image]) {
        if value.trim().is_empty() {
            return Err(invalid(name, value, "must name an image"));
        }
    }
    if !workdir.starts_with('/') {
        return Err(invalid(names[2], workdir, "must be an absolute path"));
    }
    Ok(Toolchain {
        build_image: build_image.to_owned(),
        run_image: run_image.to_owned(),
        workdir: workdir.to_owned(),
    })
}
