//! What the three tool-author tests (`author_rust`, `author_python`,
//! `author_js`) share: reading a scaffold README's commands.
#![allow(dead_code)]

/// The fenced ```sh blocks of a Markdown file, in order.
pub fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in the README:\n{markdown}");
    blocks
}

/// `wasmward new` prints `next steps` as indented lines: `cd NAME`, then
/// commands that must each be a line of the README's sh blocks.
pub fn assert_printed_steps_are_the_readmes(printed: &str, project: &str, readme: &str) {
    let readme_lines: Vec<String> = sh_blocks(readme).iter().flat_map(|b| b.lines().map(|l| l.trim().to_string()).collect::<Vec<_>>()).collect();
    let steps: Vec<&str> = printed.lines().filter(|l| l.starts_with("  ")).map(str::trim).collect();
    assert_eq!(steps.first().copied(), Some(format!("cd {project}").as_str()), "{printed}");
    assert!(steps.len() >= 3, "a build step and a call step: {printed}");
    for step in &steps[1..] {
        assert!(readme_lines.iter().any(|l| l == step), "printed step {step:?} is not in the README's sh blocks:\n{readme}");
    }
}
