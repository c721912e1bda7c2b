//! The two timestamp formats of the logging script, and the archive names.
//!
//! `t`: TAI64N, as s6-log writes it: `@` then 24 lowercase hex digits, the 8-byte TAI64 label
//! (2^62 + TAI seconds) then 4 bytes of nanoseconds. TAI seconds are the Unix (UTC) seconds
//! plus TAI-UTC, which is 10 s plus one second per leap second inserted since 1972 (37 s since
//! 2017-01-01). The table below makes our labels equal to s6-log's, so `s6-tai64nlocal` decodes
//! them to the right time.
//!
//! `T`: ISO 8601 in UTC with nanoseconds and a `Z`: `2026-11-23T12:34:56.123456789Z`. UTC, so
//! a log never depends on the container's TZ and sorts as text.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment, as Unix seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// The Unix times at which TAI-UTC grew by one second (the first second after each leap
/// second), from 1972-07-01 to 2017-01-01. No leap second has been announced since.
const LEAP_SECONDS: [i64; 27] = [
    78796800, 94694400, 126230400, 157766400, 189302400, 220924800, 252460800, 283996800,
    315532800, 362793600, 394329600, 425865600, 489024000, 567993600, 631152000, 662688000,
    709948800, 741484800, 773020800, 820454400, 867715200, 915148800, 1136073600, 1230768000,
    1341100800, 1435708800, 1483228800,
];

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Timestamp {
    /// The wall clock now.
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                // a clock before 1970: count backwards
                let d = e.duration();
                if d.subsec_nanos() == 0 {
                    Timestamp {
                        secs: -(d.as_secs() as i64),
                        nanos: 0,
                    }
                } else {
                    Timestamp {
                        secs: -(d.as_secs() as i64) - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }

    /// The next nanosecond.
    pub fn next(self) -> Timestamp {
        if self.nanos >= 999_999_999 {
            Timestamp {
                secs: self.secs + 1,
                nanos: 0,
            }
        } else {
            Timestamp {
                secs: self.secs,
                nanos: self.nanos + 1,
            }
        }
    }

    /// The TAI64 label: 2^62 + Unix seconds + TAI-UTC.
    pub fn tai64(self) -> u64 {
        let leaps = LEAP_SECONDS.iter().take_while(|&&t| t <= self.secs).count() as i64;
        ((1u64 << 62) as i64)
            .wrapping_add(self.secs)
            .wrapping_add(10 + leaps) as u64
    }

    /// Appends `@` and the 24 hex digits of the TAI64N label.
    pub fn push_tai64n(self, out: &mut Vec<u8>) {
        out.push(b'@');
        push_hex(out, self.tai64(), 16);
        push_hex(out, u64::from(self.nanos), 8);
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` (UTC).
    pub fn push_iso8601(self, out: &mut Vec<u8>) {
        let days = self.secs.div_euclid(86400);
        let sod = self.secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        if (0..=9999).contains(&y) {
            push_dec(out, y as u64, 4);
        } else {
            out.extend_from_slice(format!("{y:+05}").as_bytes());
        }
        out.push(b'-');
        push_dec(out, u64::from(m), 2);
        out.push(b'-');
        push_dec(out, u64::from(d), 2);
        out.push(b'T');
        push_dec(out, (sod / 3600) as u64, 2);
        out.push(b':');
        push_dec(out, (sod / 60 % 60) as u64, 2);
        out.push(b':');
        push_dec(out, (sod % 60) as u64, 2);
        out.push(b'.');
        push_dec(out, u64::from(self.nanos), 9);
        out.push(b'Z');
    }

    /// The name of an archive rotated at this moment: `@<TAI64N>.s`.
    pub fn archive_name(self) -> String {
        let mut v = Vec::with_capacity(27);
        self.push_tai64n(&mut v);
        v.extend_from_slice(b".s");
        String::from_utf8_lossy(&v).into_owned()
    }
}

fn push_hex(out: &mut Vec<u8>, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xf) as usize]);
    }
}

fn push_dec(out: &mut Vec<u8>, v: u64, digits: u32) {
    let mut buf = [b'0'; 20];
    let mut v = v;
    let mut i = buf.len();
    while v > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let width = (buf.len() - i).max(digits as usize).min(buf.len());
    out.extend_from_slice(&buf[buf.len() - width..]);
}

/// (year, month, day) of the proleptic Gregorian calendar for a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(secs: i64, nanos: u32) -> String {
        let mut v = Vec::new();
        Timestamp { secs, nanos }.push_iso8601(&mut v);
        String::from_utf8(v).unwrap()
    }

    fn tai(secs: i64, nanos: u32) -> String {
        let mut v = Vec::new();
        Timestamp { secs, nanos }.push_tai64n(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn iso8601_known_values() {
        let table = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000000005Z"),
            (1_795_436_081, 397_480_527, "2026-11-23T12:14:41.397480527Z"),
            (
                253_402_300_799,
                999_999_999,
                "9999-12-31T23:59:59.999999999Z",
            ),
            (-1, 0, "1969-12-31T23:59:59.000000000Z"),
            (1_709_251_199, 0, "2024-02-29T23:59:59.000000000Z"),
        ];
        for (secs, nanos, want) in table {
            assert_eq!(iso(secs, nanos), want, "{secs}");
        }
    }

    #[test]
    fn tai64n_known_values() {
        // before the first leap second: TAI-UTC = 10
        assert_eq!(tai(0, 0), "@400000000000000a00000000");
        // 2017-01-01T00:00:00Z is the first second with TAI-UTC = 37 (0x25)
        assert_eq!(
            tai(1_483_228_800, 1),
            "@40000000586846a5".to_string() + "00000001"
        );
        assert_eq!(
            tai(1_483_228_799, 0),
            "@40000000586846a3".to_string() + "00000000"
        );
        // the value s6-log 2.11 printed for 2026-11-23T12:14:41.398Z-ish (TAI-UTC 37)
        assert_eq!(tai(1_795_436_081, 0x17c9_45ed), "@400000006b042e5617c945ed");
        assert_eq!(tai(0, 999_999_999).len(), 25);
    }

    #[test]
    fn leap_table_is_at_midnight_of_january_or_july_first() {
        let mut prev = 0;
        for &t in &LEAP_SECONDS {
            assert!(t > prev);
            prev = t;
            let s = iso(t, 0);
            assert!(
                s.ends_with("-01-01T00:00:00.000000000Z")
                    || s.ends_with("-07-01T00:00:00.000000000Z"),
                "{s}"
            );
        }
    }

    #[test]
    fn archive_names_sort_by_time() {
        let a = Timestamp {
            secs: 1_700_000_000,
            nanos: 999_999_999,
        };
        let b = a.next();
        assert_eq!(
            b,
            Timestamp {
                secs: 1_700_000_001,
                nanos: 0
            }
        );
        assert!(a.archive_name() < b.archive_name());
        assert!(a.archive_name().starts_with("@4000000065"));
        assert!(a.archive_name().ends_with(".s"));
        assert_eq!(a.archive_name().len(), 27);
    }
}
