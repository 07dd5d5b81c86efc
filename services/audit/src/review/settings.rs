//! The review's configuration (`[review]`): working hours, what counts as many persons in a
//! short time, the default sample and how many findings a rule keeps.

use std::fmt;

/// Working hours on weekdays, Swedish local time: `start` inclusive, `end` exclusive, in
/// minutes after midnight. Built only valid (`parse`): `start < end`, both within the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingHours {
    start: u32,
    end: u32,
}

impl WorkingHours {
    /// `"07:00-18:00"`.
    pub fn parse(text: &str) -> Result<WorkingHours, String> {
        let (start, end) = text
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("working hours {text:?}: expected HH:MM-HH:MM"))?;
        let start = minutes(start.trim())
            .ok_or_else(|| format!("working hours {text:?}: {start:?} is not HH:MM"))?;
        let end = minutes(end.trim())
            .ok_or_else(|| format!("working hours {text:?}: {end:?} is not HH:MM"))?;
        if start >= end {
            return Err(format!(
                "working hours {text:?}: the start must be before the end"
            ));
        }
        Ok(WorkingHours { start, end })
    }

    /// Minutes after midnight the working day starts.
    pub fn start_minute(&self) -> u32 {
        self.start
    }

    /// Minutes after midnight the working day ends (exclusive).
    pub fn end_minute(&self) -> u32 {
        self.end
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// `HH:MM` as minutes after midnight; `24:00` is the end of the day.
fn minutes(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

/// Most entries one run may draw at random.
pub const MAX_SAMPLE: u32 = 1000;

/// The review's settings. Built only valid (`new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewSettings {
    working_hours: WorkingHours,
    burst_persons: u32,
    burst_minutes: u32,
    sample_size: u32,
    max_findings_per_rule: u32,
}

impl ReviewSettings {
    /// `burst_persons` distinct persons accessed by one user within `burst_minutes` is many;
    /// `sample_size` entries are drawn when a run does not say; each rule keeps at most
    /// `max_findings_per_rule` findings (its count says how many it matched).
    pub fn new(
        working_hours: WorkingHours,
        burst_persons: u32,
        burst_minutes: u32,
        sample_size: u32,
        max_findings_per_rule: u32,
    ) -> Result<ReviewSettings, String> {
        if burst_persons < 2 {
            return Err("review burst_persons must be at least 2".into());
        }
        if burst_minutes == 0 || burst_minutes > 24 * 60 {
            return Err("review burst_minutes must be 1 to 1440".into());
        }
        if sample_size > MAX_SAMPLE {
            return Err(format!("review sample_size must be at most {MAX_SAMPLE}"));
        }
        if max_findings_per_rule == 0 || max_findings_per_rule > 10_000 {
            return Err("review max_findings_per_rule must be 1 to 10000".into());
        }
        Ok(ReviewSettings {
            working_hours,
            burst_persons,
            burst_minutes,
            sample_size,
            max_findings_per_rule,
        })
    }

    pub fn working_hours(&self) -> WorkingHours {
        self.working_hours
    }

    pub fn burst_persons(&self) -> u32 {
        self.burst_persons
    }

    pub fn burst_minutes(&self) -> u32 {
        self.burst_minutes
    }

    pub fn sample_size(&self) -> u32 {
        self.sample_size
    }

    pub fn max_findings_per_rule(&self) -> u32 {
        self.max_findings_per_rule
    }
}

impl Default for ReviewSettings {
    /// Weekdays 07:00-18:00; 20 persons within 10 minutes; 50 drawn; 200 findings a rule.
    fn default() -> ReviewSettings {
        ReviewSettings {
            working_hours: WorkingHours {
                start: 7 * 60,
                end: 18 * 60,
            },
            burst_persons: 20,
            burst_minutes: 10,
            sample_size: 50,
            max_findings_per_rule: 200,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_parse_and_print_back() {
        let hours = WorkingHours::parse("07:00-18:00").unwrap();
        assert_eq!((hours.start_minute(), hours.end_minute()), (420, 1080));
        assert_eq!(hours.to_string(), "07:00-18:00");
        assert_eq!(
            WorkingHours::parse(" 00:00 - 24:00 ").unwrap().to_string(),
            "00:00-24:00"
        );
        for bad in [
            "",
            "7-18",
            "07:00",
            "18:00-07:00",
            "07:60-18:00",
            "25:00-26:00",
        ] {
            assert!(WorkingHours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let hours = WorkingHours::parse("08:00-17:00").unwrap();
        assert!(ReviewSettings::new(hours, 20, 10, 50, 200).is_ok());
        assert!(ReviewSettings::new(hours, 1, 10, 50, 200).is_err());
        assert!(ReviewSettings::new(hours, 20, 0, 50, 200).is_err());
        assert!(ReviewSettings::new(hours, 20, 10, MAX_SAMPLE + 1, 200).is_err());
        assert!(ReviewSettings::new(hours, 20, 10, 50, 0).is_err());
    }
}
