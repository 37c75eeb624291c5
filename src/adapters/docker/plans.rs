//! What a language asks of the sandbox: the image, command and environment of its build and of each run. The
//! language modules ([`super::languages`]) make them; the sandbox carries them out the same way for every language.

/// What a language asks of a build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The language's name, part of the artifact cache's key.
    pub language: &'static str,
    /// The build image; its id is part of the artifact cache's key, so a rebuilt image never serves old output.
    pub image: String,
    /// The name the source is saved under in the program directory.
    pub source_file: String,
    /// The compiler's command line, run in the program directory.
    pub command: Vec<String>,
    /// The compiler's environment, over the image's own.
    pub env: Vec<String>,
}

/// What a language asks of each run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The run image; it needs nothing but the program's runtime.
    pub image: String,
    /// The program's working directory (SCRC's `*_WORKDIR`).
    pub workdir: String,
    /// The program's command line.
    pub command: Vec<String>,
    /// The program's environment, over the image's own.
    pub env: Vec<String>,
}
