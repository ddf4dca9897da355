//! Prints the URL of a fresh, empty test database and leaves it in place, for test
//! suites outside Rust. Exits 1 (after saying why on stderr) when none can be had.

fn main() -> std::process::ExitCode {
    match adze_testdb::fresh_database_blocking() {
        Some(database) => {
            println!("{}", database.keep());
            std::process::ExitCode::SUCCESS
        }
        None => std::process::ExitCode::FAILURE,
    }
}
