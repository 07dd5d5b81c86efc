//! C2SP tlog-policy: the logs a verifier trusts, the witnesses it knows, nested
//! k-of-n groups of them and the quorum a checkpoint's cosignatures must meet.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> <k|all|any> <member> <member> …
//! quorum <name|none>
//! ```
//!
//! Names are defined before they are used, once; a group lists each member once and
//! needs between 1 and all of them; exactly one `quorum` line. `#` starts a comment.

use std::collections::{BTreeMap, HashSet};

use tryggdel_merkle::checkpoint::{
    Checkpoint, CheckpointVerifier, CosignatureVerifier, NoteSignature, SignedNote,
};

use crate::PolicyError;

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    quorum: Quorum,
}

/// A log the policy trusts: its key (whose name is the origin) and where it is served.
#[derive(Debug, Clone)]
pub struct PolicyLog {
    verifier: CheckpointVerifier,
    url: Option<String>,
}

/// A witness the policy knows: its name in the policy, its key and its submission URL.
#[derive(Debug, Clone)]
pub struct PolicyWitness {
    name: String,
    verifier: CosignatureVerifier,
    url: Option<String>,
}

/// A checkpoint whose log signature verified and whose cosignatures meet the quorum.
#[derive(Debug, Clone)]
pub struct CosignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The witnesses (policy names) whose cosignatures verified, with their times.
    pub cosigned_by: BTreeMap<String, u64>,
}

impl CosignedCheckpoint {
    /// The time of the newest cosignature, if any.
    #[must_use]
    pub fn newest_cosignature(&self) -> Option<u64> {
        self.cosigned_by.values().copied().max()
    }
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, Copy)]
enum Quorum {
    None,
    Member(Member),
}

impl PolicyLog {
    /// The log's verifier (its key name is the origin).
    #[must_use]
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }

    /// Where the log is served, if the policy says.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
}

impl PolicyWitness {
    /// The witness's name in the policy.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The witness's cosignature key.
    #[must_use]
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// The witness's submission prefix (its `add-checkpoint` is below it), if given.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
}

impl Policy {
    /// Parses a policy text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut logs = Vec::new();
        let mut witnesses: Vec<PolicyWitness> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut quorum = None;
        for (number, raw) in text.lines().enumerate() {
            let line_number = number + 1;
            let err = |reason: String| PolicyError::Line {
                line: line_number,
                reason,
            };
            let content = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = content.split_whitespace().collect();
            let Some((&keyword, args)) = words.split_first() else {
                continue;
            };
            if quorum.is_some() {
                return Err(err("nothing may follow the quorum line".into()));
            }
            let lookup = |name: &str| -> Option<Member> {
                witnesses
                    .iter()
                    .position(|w| w.name == name)
                    .map(Member::Witness)
                    .or_else(|| {
                        groups
                            .iter()
                            .position(|g| g.name == name)
                            .map(Member::Group)
                    })
            };
            match keyword {
                "log" => {
                    let (vkey, url) = match args {
                        [vkey] => (*vkey, None),
                        [vkey, url] => (*vkey, Some((*url).to_owned())),
                        _ => return Err(err("expected: log <vkey> [<url>]".into())),
                    };
                    let verifier = CheckpointVerifier::parse_vkey(vkey)
                        .map_err(|e| err(format!("log key: {e}")))?;
                    if logs
                        .iter()
                        .any(|l: &PolicyLog| l.verifier.name() == verifier.name())
                    {
                        return Err(err(format!("log {} listed twice", verifier.name())));
                    }
                    logs.push(PolicyLog { verifier, url });
                }
                "witness" => {
                    let (name, vkey, url) = match args {
                        [name, vkey] => (*name, *vkey, None),
                        [name, vkey, url] => (*name, *vkey, Some((*url).to_owned())),
                        _ => {
                            return Err(err("expected: witness <name> <vkey> [<url>]".into()));
                        }
                    };
                    if lookup(name).is_some() || name == "none" {
                        return Err(err(format!("name {name} is already defined")));
                    }
                    let verifier = CosignatureVerifier::parse_vkey(vkey)
                        .map_err(|e| err(format!("witness key: {e}")))?;
                    if witnesses.iter().any(|w| w.verifier == verifier) {
                        return Err(err(format!("witness {name} repeats another's key")));
                    }
                    witnesses.push(PolicyWitness {
                        name: name.to_owned(),
                        verifier,
                        url,
                    });
                }
                "group" => {
                    let [name, threshold, members @ ..] = args else {
                        return Err(err("expected: group <name> <k|all|any> <member>…".into()));
                    };
                    if lookup(name).is_some() || *name == "none" {
                        return Err(err(format!("name {name} is already defined")));
                    }
                    if members.is_empty() {
                        return Err(err(format!("group {name} has no members")));
                    }
                    let mut resolved = Vec::with_capacity(members.len());
                    for member in members {
                        let Some(found) = lookup(member) else {
                            return Err(err(format!(
                                "{member} is not defined before group {name}"
                            )));
                        };
                        if resolved.contains(&found) {
                            return Err(err(format!("{member} is listed twice in group {name}")));
                        }
                        resolved.push(found);
                    }
                    let threshold = match *threshold {
                        "all" => resolved.len(),
                        "any" => 1,
                        k => parse_threshold(k).ok_or_else(|| {
                            err(format!(
                                "threshold {k:?} is not a decimal number, all or any"
                            ))
                        })?,
                    };
                    if threshold == 0 || threshold > resolved.len() {
                        return Err(err(format!(
                            "group {name} needs {threshold} of {} members",
                            resolved.len()
                        )));
                    }
                    groups.push(Group {
                        name: (*name).to_owned(),
                        threshold,
                        members: resolved,
                    });
                }
                "quorum" => {
                    let [name] = args else {
                        return Err(err("expected: quorum <name|none>".into()));
                    };
                    quorum = Some(if *name == "none" {
                        Quorum::None
                    } else {
                        Quorum::Member(
                            lookup(name).ok_or_else(|| err(format!("{name} is not defined")))?,
                        )
                    });
                }
                other => return Err(err(format!("unknown keyword {other:?}"))),
            }
        }
        let quorum = quorum.ok_or(PolicyError::NoQuorum)?;
        Ok(Self {
            logs,
            witnesses,
            groups,
            quorum,
        })
    }

    /// The logs the policy trusts.
    #[must_use]
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The witnesses the policy knows.
    #[must_use]
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// Whether the witnesses named (policy names) meet the quorum.
    #[must_use]
    pub fn is_met_by<'a>(&self, witnesses: impl IntoIterator<Item = &'a str>) -> bool {
        let cosigned: HashSet<usize> = witnesses
            .into_iter()
            .filter_map(|name| self.witnesses.iter().position(|w| w.name == name))
            .collect();
        match self.quorum {
            Quorum::None => true,
            Quorum::Member(member) => self.member_met(member, &cosigned),
        }
    }

    /// Verifies every cosignature in `note` from a witness of the policy over its body and
    /// returns the witnesses' policy names with the cosignatures' times. Lines from unknown
    /// keys are ignored; a line from a known key that does not verify is an error.
    pub fn verified_cosignatures(
        &self,
        note: &SignedNote,
    ) -> Result<BTreeMap<String, u64>, PolicyError> {
        let mut out = BTreeMap::new();
        for signature in note.signatures() {
            let Some(witness) = self.witness_of(signature) else {
                continue;
            };
            let time = witness
                .verifier
                .verify(note.body(), signature)
                .map_err(|_| PolicyError::InvalidCosignature(witness.name.clone()))?;
            out.insert(witness.name.clone(), time);
        }
        Ok(out)
    }

    /// The policy's witness that `signature` claims to be from, if any.
    #[must_use]
    pub fn witness_of(&self, signature: &NoteSignature) -> Option<&PolicyWitness> {
        self.witnesses
            .iter()
            .find(|w| w.verifier.is_signer_of(signature))
    }

    /// Checks a cosigned checkpoint note completely: signed by a log of the policy (the one
    /// whose key name is the origin), every known cosignature valid, the quorum met, and the
    /// newest cosignature no older than `max_age_seconds` before `now` (nor more than a
    /// minute after it).
    pub fn verify_checkpoint(
        &self,
        note_text: &str,
        now: u64,
        max_age_seconds: u64,
    ) -> Result<CosignedCheckpoint, PolicyError> {
        let note = SignedNote::parse(note_text).map_err(PolicyError::Note)?;
        let checkpoint = Checkpoint::parse_body(note.body()).map_err(PolicyError::Note)?;
        let log = self
            .logs
            .iter()
            .find(|l| l.verifier.name() == checkpoint.origin())
            .ok_or_else(|| PolicyError::UnknownLog(checkpoint.origin().to_owned()))?;
        log.verifier
            .verify_note(&note)
            .map_err(PolicyError::LogSignature)?;
        let cosigned_by = self.verified_cosignatures(&note)?;
        if !self.is_met_by(cosigned_by.keys().map(String::as_str)) {
            return Err(PolicyError::QuorumNotMet {
                cosigned_by: cosigned_by.keys().cloned().collect(),
            });
        }
        let cosigned = CosignedCheckpoint {
            checkpoint,
            cosigned_by,
        };
        if let Quorum::Member(_) = self.quorum {
            let newest = cosigned.newest_cosignature().unwrap_or(0);
            if newest > now.saturating_add(60) {
                return Err(PolicyError::CosignatureFromTheFuture { time: newest, now });
            }
            if now.saturating_sub(newest) > max_age_seconds {
                return Err(PolicyError::TooOld {
                    newest,
                    now,
                    max_age_seconds,
                });
            }
        }
        Ok(cosigned)
    }

    fn member_met(&self, member: Member, cosigned: &HashSet<usize>) -> bool {
        match member {
            Member::Witness(index) => cosigned.contains(&index),
            Member::Group(index) => self.groups.get(index).is_some_and(|group| {
                group
                    .members
                    .iter()
                    .filter(|m| self.member_met(**m, cosigned))
                    .count()
                    >= group.threshold
            }),
        }
    }
}

fn parse_threshold(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use ed25519_dalek::SigningKey;
    use tryggdel_merkle::checkpoint::Cosigner;

    use super::*;

    fn vkey(seed: u8, name: &str) -> String {
        Cosigner::new(SigningKey::from_bytes(&[seed; 32]), name)
            .unwrap()
            .verifier()
            .to_vkey_string()
    }

    fn three() -> String {
        format!(
            "witness a {}\nwitness b {}\nwitness c {}\n",
            vkey(1, "a"),
            vkey(2, "b"),
            vkey(3, "c")
        )
    }

    #[test]
    fn k_of_n_with_all_and_any() {
        let policy = Policy::parse(&format!("{}group g 2 a b c\nquorum g\n", three())).unwrap();
        assert!(policy.is_met_by(["a", "c"]));
        assert!(!policy.is_met_by(["b"]));
        assert!(!policy.is_met_by(["b", "b", "unknown"]));
        let all = Policy::parse(&format!("{}group g all a b c\nquorum g\n", three())).unwrap();
        assert!(!all.is_met_by(["a", "b"]));
        assert!(all.is_met_by(["a", "b", "c"]));
        let any = Policy::parse(&format!("{}group g any a b c\nquorum g\n", three())).unwrap();
        assert!(any.is_met_by(["b"]));
        let single = Policy::parse(&format!("{}quorum b\n", three())).unwrap();
        assert!(single.is_met_by(["b"]) && !single.is_met_by(["a", "c"]));
        let none = Policy::parse("quorum none\n").unwrap();
        assert!(none.is_met_by([]));
    }

    #[test]
    fn malformed_policies_are_refused() {
        for text in [
            String::new(),
            format!("{}group g 2 a b c\n", three()),
            format!("{}group g 4 a b c\nquorum g\n", three()),
            format!("{}group g 0 a b c\nquorum g\n", three()),
            format!("{}group g 02 a b c\nquorum g\n", three()),
            format!("{}group g 2 a a\nquorum g\n", three()),
            format!("{}group g 1 a d\nquorum g\n", three()),
            format!("{}group a 1 b c\nquorum a\n", three()),
            format!("{}quorum d\n", three()),
            format!("{}quorum a\nwitness d {}\n", three(), vkey(4, "d")),
            format!("{}witness d {}\nquorum a\n", three(), vkey(1, "a")),
            "witness a notakey\nquorum a\n".to_owned(),
            "frobnicate\nquorum none\n".to_owned(),
            "quorum none\nquorum none\n".to_owned(),
        ] {
            assert!(Policy::parse(&text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn comments_and_urls_are_read() {
        let text = format!(
            "# witnesses\nwitness a {} https://a.example/ # the first\nquorum a\n",
            vkey(1, "a")
        );
        let policy = Policy::parse(&text).unwrap();
        assert_eq!(policy.witnesses()[0].url(), Some("https://a.example/"));
    }
}
