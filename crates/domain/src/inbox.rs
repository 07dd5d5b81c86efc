//! Where a disclosure goes: the inbox of a law-enforcement authority (domain.md §3, §5).
//!
//! Polismyndigheten keeps its seven regions, each an inbox of its own (a disclosure from an
//! organisation goes to the region of its county); every other law-enforcement authority the
//! registry names as a recipient (Åklagarmyndigheten, Säkerhetspolisen, …) has one inbox.
//!
//! Invariants: an inbox is a police region or an authority other than Polismyndigheten (the
//! police have no inbox outside their regions); its text form is the region's code or the
//! authority's recipient code, which never collide, and parses back to the same inbox.

use std::fmt;

use crate::organisation::{OrganisationError, PoliceRegion, Recipient};
use crate::serde_support::serde_via_string;

/// A law-enforcement inbox: a police region, or another authority's single inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Inbox {
    Police(PoliceRegion),
    Authority(OtherAuthority),
}

/// A law-enforcement authority other than Polismyndigheten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OtherAuthority(Recipient);

impl OtherAuthority {
    /// The authority, unless it is Polismyndigheten (whose inboxes are its regions).
    pub fn new(recipient: Recipient) -> Option<OtherAuthority> {
        (recipient != Recipient::Polismyndigheten).then_some(OtherAuthority(recipient))
    }

    pub fn recipient(self) -> Recipient {
        self.0
    }
}

impl Inbox {
    /// Every inbox: the seven police regions, then the other authorities.
    pub fn all() -> impl Iterator<Item = Inbox> {
        PoliceRegion::ALL.into_iter().map(Inbox::Police).chain(
            Recipient::ALL
                .into_iter()
                .filter_map(OtherAuthority::new)
                .map(Inbox::Authority),
        )
    }

    /// The inbox a disclosure to `recipient` goes to: for Polismyndigheten the region of the
    /// disclosing organisation (`None` when it has none), otherwise the authority's own.
    pub fn for_recipient(
        recipient: Recipient,
        police_region: Option<PoliceRegion>,
    ) -> Option<Inbox> {
        match OtherAuthority::new(recipient) {
            Some(authority) => Some(Inbox::Authority(authority)),
            None => police_region.map(Inbox::Police),
        }
    }

    /// The authority this inbox belongs to.
    pub fn recipient(self) -> Recipient {
        match self {
            Inbox::Police(_) => Recipient::Polismyndigheten,
            Inbox::Authority(authority) => authority.recipient(),
        }
    }

    /// The police region, for a police inbox.
    pub fn police_region(self) -> Option<PoliceRegion> {
        match self {
            Inbox::Police(region) => Some(region),
            Inbox::Authority(_) => None,
        }
    }

    /// The text form: the region's code (`mitt`) or the authority's (`aklagarmyndigheten`).
    pub fn as_str(self) -> &'static str {
        match self {
            Inbox::Police(region) => region.as_str(),
            Inbox::Authority(authority) => authority.recipient().as_str(),
        }
    }

    /// Parses the text form `as_str` produces; anything else is refused.
    pub fn parse(input: &str) -> Result<Inbox, OrganisationError> {
        if let Ok(region) = PoliceRegion::parse(input) {
            return Ok(Inbox::Police(region));
        }
        Recipient::parse(input)
            .ok()
            .and_then(OtherAuthority::new)
            .map(Inbox::Authority)
            .ok_or_else(|| OrganisationError::UnknownInbox(input.to_owned()))
    }

    /// The Swedish name, e.g. `Polismyndigheten, Region Öst` or `Åklagarmyndigheten`.
    pub fn display_name(self) -> String {
        match self {
            Inbox::Police(region) => format!("Polismyndigheten, {}", region.display_name()),
            Inbox::Authority(authority) => authority.recipient().display_name().to_owned(),
        }
    }
}

impl fmt::Display for Inbox {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

serde_via_string!(Inbox);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inbox_parses_back_from_its_text_and_no_two_share_one() {
        let inboxes: Vec<Inbox> = Inbox::all().collect();
        assert_eq!(inboxes.len(), 7 + 6);
        let texts: std::collections::BTreeSet<&str> =
            inboxes.iter().map(|inbox| inbox.as_str()).collect();
        assert_eq!(texts.len(), inboxes.len());
        for inbox in inboxes {
            assert_eq!(Inbox::parse(inbox.as_str()), Ok(inbox));
        }
    }

    #[test]
    fn polismyndigheten_has_no_inbox_outside_its_regions() {
        assert_eq!(
            Inbox::parse("polismyndigheten"),
            Err(OrganisationError::UnknownInbox("polismyndigheten".into()))
        );
        assert_eq!(OtherAuthority::new(Recipient::Polismyndigheten), None);
        assert_eq!(
            Inbox::for_recipient(Recipient::Polismyndigheten, None),
            None,
            "an organisation without a county routes nothing to the police"
        );
    }

    #[test]
    fn a_recipient_goes_to_its_inbox() {
        assert_eq!(
            Inbox::for_recipient(Recipient::Polismyndigheten, Some(PoliceRegion::Syd)),
            Some(Inbox::Police(PoliceRegion::Syd))
        );
        let prosecutors =
            Inbox::for_recipient(Recipient::Aklagarmyndigheten, Some(PoliceRegion::Syd));
        assert_eq!(prosecutors.map(Inbox::as_str), Some("aklagarmyndigheten"));
        assert_eq!(prosecutors.map(Inbox::police_region), Some(None));
        assert_eq!(
            prosecutors.map(Inbox::recipient),
            Some(Recipient::Aklagarmyndigheten)
        );
        assert_eq!(
            Inbox::Police(PoliceRegion::Ost).display_name(),
            "Polismyndigheten, Region Öst"
        );
        assert!(Inbox::parse("").is_err());
        assert!(Inbox::parse("Mitt").is_err());
    }
}
