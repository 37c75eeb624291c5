//! Which file is a program's entry, the file that is the program: the language's usual main file, as a one-file
//! script's source is saved and as a program of several files names none. Java's is named after the source's public
//! class, as javac requires, and the class run is the entry's, with its package.

use super::program::ProgramPath;
use super::script::Language;

impl Language {
    /// The file a script's source is saved as when it names no `entry`: the language's usual main file.
    pub fn main_file(self, source: &str) -> String {
        match self {
            Language::Java => format!("{}.java", public_class(source).unwrap_or_else(|| "Main".into())),
            other => other.default_main().to_owned(),
        }
    }

    /// Where a script's source is saved: its `entry` when it names one, else the language's usual main file.
    pub fn saved_as(self, entry: Option<&ProgramPath>, source: &str) -> String {
        entry.map_or_else(|| self.main_file(source), ToString::to_string)
    }

    /// The entry of a program sent as `files` alone, naming none: the language's usual main file.
    pub fn default_main(self) -> &'static str {
        match self {
            Language::Python => "main.py",
            Language::Go => "main.go",
            Language::C => "main.c",
            Language::Cpp => "main.cpp",
            Language::Java => "Main.java",
            Language::JavaScript => "main.js",
            Language::Ruby => "main.rb",
            Language::Php => "main.php",
            Language::Rust => "main.rs",
            Language::TypeScript => "main.ts",
            Language::Kotlin => "main.kt",
            Language::CSharp => "main.cs",
        }
    }
}

/// The Java class an entry runs: the file's name without `.java`, after the package the source declares.
pub fn java_main_class(entry: &str, source: &str) -> String {
    let file = entry.rsplit('/').next().unwrap_or(entry);
    let class = file.strip_suffix(".java").unwrap_or(file);
    match java_package(source) {
        Some(package) => format!("{package}.{class}"),
        None => class.to_owned(),
    }
}

/// The class of a Kotlin entry's top-level `main`: the file's facade class, its name without `.kt`, capitalised,
/// characters that cannot be in a class name as `_`, and `Kt` after it (`main.kt` → `MainKt`), in the package the
/// source declares. (A file that renames its facade with `@file:JvmName` is not followed.)
pub fn kotlin_main_class(entry: &str, source: &str) -> String {
    let file = entry.rsplit('/').next().unwrap_or(entry);
    let stem = file.strip_suffix(".kt").unwrap_or(file);
    let mut class: String = stem
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if let Some(first) = class.chars().next() {
        class.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
    }
    class.push_str("Kt");
    match java_package(source) {
        Some(package) => format!("{package}.{class}"),
        None => class,
    }
}

/// The package a Java or Kotlin source declares (`package a.b;`, or without the `;` to the line's end in Kotlin),
/// skipping comments.
fn java_package(source: &str) -> Option<String> {
    let code = strip_comments_and_literals(source);
    let start = code.find("package")?;
    let before = &code[..start];
    // Only a declaration before any type: `package` must be the first word of the code.
    if !before.trim().is_empty() {
        return None;
    }
    let rest = &code[start + "package".len()..];
    let name: String = rest
        .chars()
        .take_while(|&c| c != ';' && c != '\n')
        .filter(|c| !c.is_whitespace())
        .collect();
    let valid = !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$'));
    valid.then_some(name)
}

/// The name of the first `public` top-level class, interface, enum or record, skipping comments and literals.
pub(crate) fn public_class(source: &str) -> Option<String> {
    let code = strip_comments_and_literals(source);
    let tokens: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|token| !token.is_empty())
        .collect();
    let kinds = ["class", "interface", "enum", "record"];
    let modifiers = ["public", "final", "abstract", "static", "strictfp", "sealed", "non"];
    for (index, token) in tokens.iter().enumerate() {
        if !kinds.contains(token) {
            continue;
        }
        let mut preceding = tokens[..index].iter().rev().take_while(|t| modifiers.contains(t));
        if preceding.any(|t| *t == "public") {
            return tokens.get(index + 1).map(|name| (*name).to_owned());
        }
    }
    None
}

/// Blanks out comments and string or character literals (keeping byte offsets), so words inside them are not
/// mistaken for declarations.
fn strip_comments_and_literals(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let blank_until = |out: &mut Vec<u8>, from: usize, to: usize| {
            for byte in &mut out[from..to.min(bytes.len())] {
                if *byte != b'\n' {
                    *byte = b' ';
                }
            }
        };
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                blank_until(&mut out, i, end);
                i = end;
            }
            (b'/', Some(b'*')) => {
                let end = source[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
                blank_until(&mut out, i, end);
                i = end;
            }
            (quote @ (b'"' | b'\''), _) => {
                let mut end = i + 1;
                while end < bytes.len() && bytes[end] != quote {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                blank_until(&mut out, i, end + 1);
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_class_names_the_java_file() {
        assert_eq!(Language::Java.main_file("public class Main { }"), "Main.java");
        assert_eq!(
            Language::Java.main_file("import java.util.*;\nclass Helper {}\npublic final class Solution {}"),
            "Solution.java"
        );
        assert_eq!(
            Language::Java.main_file("class Main { }"),
            "Main.java",
            "no public class: Main"
        );
        assert_eq!(
            Language::Java.main_file(
                "// public class Decoy\n/* public class Other */\nString s = \"public class X\";\npublic class Real {}"
            ),
            "Real.java"
        );
        assert_eq!(Language::Python.main_file("print(1)"), "main.py");
    }

    #[test]
    fn the_kotlin_class_run_is_the_entrys_facade_in_its_package() {
        assert_eq!(kotlin_main_class("main.kt", "fun main() {}"), "MainKt");
        assert_eq!(
            kotlin_main_class("grader.kt", "// the grader\nfun main() {}"),
            "GraderKt"
        );
        assert_eq!(
            kotlin_main_class("src/my-app.kt", "package a.b\n\nfun main() {}"),
            "a.b.My_appKt"
        );
        assert_eq!(
            kotlin_main_class("Main.kt", "package a.b;\nfun main() {}"),
            "a.b.MainKt"
        );
    }

    #[test]
    fn the_java_class_run_is_the_entrys_in_its_package() {
        assert_eq!(java_main_class("Main.java", "public class Main {}"), "Main");
        assert_eq!(
            java_main_class(
                "com/example/App.java",
                "// x\npackage com.example;\npublic class App {}"
            ),
            "com.example.App"
        );
        assert_eq!(
            java_main_class("App.java", "class X { String s = \"package y;\"; }"),
            "App"
        );
    }
}
