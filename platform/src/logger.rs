//! `log` facade backend writing to serial. The level comes from the
//! firmware command line (`log=debug`); info by default.

use crate::serial::Serial;
use core::fmt::Write;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug => "debug: ",
            Level::Trace => "trace: ",
        };
        let _ = writeln!(Serial, "{tag}{}", record.args());
    }

    fn flush(&self) {}
}

pub fn init(level: LevelFilter) {
    // set_logger only fails when called twice; the first logger stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The last valid `log=<level>` of the firmware command line (before the
/// heap exists: [`crate::cmdline`] allocates nothing).
pub fn level_from_cmdline(cmdline: &str) -> LevelFilter {
    crate::cmdline::values(cmdline, "log")
        .filter_map(|value| value.plain()?.parse().ok())
        .last()
        .unwrap_or(LevelFilter::Info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_parsing() {
        assert_eq!(level_from_cmdline(""), LevelFilter::Info);
        assert_eq!(level_from_cmdline("log=debug"), LevelFilter::Debug);
        assert_eq!(level_from_cmdline("a log=warn b"), LevelFilter::Warn);
        assert_eq!(level_from_cmdline("log=nonsense"), LevelFilter::Info);
        assert_eq!(
            level_from_cmdline("log=trace log=error"),
            LevelFilter::Error
        );
        assert_eq!(
            level_from_cmdline(r#"cmdline="log=debug""#),
            LevelFilter::Info
        );
    }
}
