//! The command line itself: every command has its help, with the exit statuses; what is not
//! understood exits 2, as clap's usage errors do.

mod support;

use support::lease;

#[test]
fn every_command_has_help_with_its_exit_statuses() {
    let ran = lease(&["--help"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    for word in ["status", "release", "check", "Exit status:", "  3  the database could not be opened"] {
        assert!(ran.stdout.contains(word), "--help names '{word}': {}", ran.stdout);
    }
    for command in ["status", "release", "check"] {
        let ran = lease(&[command, "--help"]);
        assert_eq!(ran.code, 0, "{ran:?}");
        assert!(ran.stdout.contains(&format!("Usage: lease {command}")), "{}", ran.stdout);
        assert!(
            ran.stdout.contains("Exit status:\n  0  "),
            "{command} --help lists its exit statuses: {}",
            ran.stdout
        );
    }
}

#[test]
fn the_version_is_the_librarys() {
    let ran = lease(&["--version"]);
    assert_eq!((ran.code, ran.stdout), (0, format!("lease {}\n", lease::inspect::LIBRARY_VERSION)));
}

#[test]
fn what_is_not_understood_exits_2() {
    for args in [&[][..], &["watch"], &["status"], &["release", "app.db"], &["status", "app.db", "--yaml"]] {
        let ran = lease(args);
        assert_eq!(ran.code, 2, "{args:?}: {ran:?}");
        assert!(ran.stdout.is_empty(), "{ran:?}");
    }
}
