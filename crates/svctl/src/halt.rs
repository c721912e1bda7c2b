//! `svctl halt [CODE]`: asks init, through `/run/custos/control`, to stop the container
//! (stage 3) and exit with CODE. Without CODE, `H`: the container exits with the code it would
//! have had anyway (CMD's, or 0 when there is none).

use std::path::Path;

use libcustos::control;
use libcustos::error::{Error, Result};
use libcustos::paths;

use crate::control::send_error;

/// CODE: a number from 0 to 255.
pub fn parse_code(text: &str) -> Result<u8> {
    let ok = !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse::<u8>().ok())
        .flatten()
        .ok_or_else(|| {
            Error::invalid(format!(
                "{text}: invalid exit code (expected a number from 0 to 255)"
            ))
        })
}

/// The bytes init reads: `h` + the code, or `H` alone.
pub fn encode(code: Option<u8>) -> Vec<u8> {
    match code {
        Some(c) => vec![b'h', c],
        None => vec![b'H'],
    }
}

pub fn run(code: Option<u8>) -> Result<u8> {
    let fifo = Path::new(paths::INIT_CONTROL);
    control::send(fifo, &encode(code)).map_err(|e| match e {
        control::SendError::NotSupervised => Error::invalid(format!(
            "{}: init is not listening (svctl halt works inside a container whose /init is custos)",
            fifo.display()
        )),
        other => send_error(paths::INIT_CONTROL, fifo, "halt the container", other),
    })?;
    Ok(libcustos::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for (text, code) in [("0", 0), ("1", 1), ("42", 42), ("255", 255), ("007", 7)] {
            assert_eq!(parse_code(text), Ok(code), "{text}");
        }
        for bad in ["", "256", "-1", "+1", "1000", "x", " 1", "0x1"] {
            let e = parse_code(bad).unwrap_err();
            assert_eq!(e.code, 100, "{bad}");
        }
        assert_eq!(encode(Some(3)), b"h\x03");
        assert_eq!(encode(None), b"H");
    }
}
