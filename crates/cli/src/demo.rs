//! `tryggdel demo`: the Trygghetens hus scenario against the running system, told step by step
//! as the people involved would see it — from the caseworker's draft to the compliance
//! officer's verified inclusion proof.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio_stream::StreamExt as _;
use tryggdel_auth::{Role, SignerConfig, TokenRequest, TokenSigner};
use tryggdel_merkle::checkpoint::CheckpointVerifier;
use tryggdel_merkle::{hash_from_slice, leaf_hash, verify_inclusion};
use tryggdel_proto::audit::v1::{
    GetCheckpointRequest, GetInclusionProofRequest, QueryRequest, get_inclusion_proof_request,
};
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, AssessLegalBasisRequest, CreateDraftRequest, GetRequest, SubmitRequest,
    assess_legal_basis_request::Target,
};
use tryggdel_proto::notification::v1::{AcknowledgeRequest, SubscribeRequest};

use crate::client::{Connection, refused};
use crate::commands::Endpoints;
use crate::draft_file::DraftFile;
use tryggdel_system::development::{AUDIENCE, ISSUER};
use tryggdel_system::{DataDirectory, read};

/// What the demo proved.
#[derive(Debug)]
pub struct DemoOutcome {
    pub disclosure_id: String,
    pub police_reference: String,
    /// Audit log indices whose inclusion was verified against the signed checkpoint.
    pub verified_entries: Vec<u64>,
    pub checkpoint_size: u64,
}

fn step(number: u32, who: &str, what: &str) {
    crate::out!("\n{number}. {who}\n   {what}");
}

fn done(text: &str) {
    crate::out!("   ✓ {text}");
}

struct Cast<'a> {
    data: &'a DataDirectory,
    signer: TokenSigner,
}

impl Cast<'_> {
    fn connection(
        &self,
        endpoint: &str,
        user: &str,
        organisation: &str,
        role: Role,
        region: Option<&str>,
    ) -> anyhow::Result<Connection> {
        let token = self.signer.mint(&TokenRequest {
            user_id: user.to_owned(),
            organisation: organisation.to_owned(),
            unit: None,
            roles: vec![role],
            police_region: region.map(str::to_owned),
            display_name: None,
            valid_for: Duration::from_secs(900),
        })?;
        Ok(Connection::development(
            self.data,
            endpoint,
            organisation,
            token,
        ))
    }
}

/// Plays the scenario; needs the development data directory of the running system (for
/// tokens, client certificates and the log's public key).
pub async fn run(data: &DataDirectory, endpoints: &Endpoints) -> anyhow::Result<DemoOutcome> {
    if !data.signing_key().exists() {
        bail!(
            "no development keys in {}: start the system first (`cargo run --bin tryggdel -- start`)",
            data.root.display()
        );
    }
    let cast = Cast {
        data,
        signer: TokenSigner::new(SignerConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            private_key_pem: read(&data.signing_key())?,
        })?,
    };
    crate::out!(
        "Trygghetens hus, Bollnäs: social services fear that a man will kill his cohabitant."
    );

    step(
        1,
        "Caseworker handlaggare-bollnas (Bollnäs kommun)",
        "drafts a disclosure to the police under OSL 10 kap. 18 c § and checks the legal basis",
    );
    let caseworker = cast.connection(
        &endpoints.disclosure,
        "handlaggare-bollnas",
        "bollnas-kommun",
        Role::Caseworker,
        None,
    )?;
    let mut client = caseworker.disclosure().await?;
    let draft = client
        .create_draft(CreateDraftRequest {
            client_request_id: format!("demo-{}", uuid::Uuid::new_v4().simple()),
            content: Some(DraftFile::example().into_content()),
        })
        .await
        .map_err(refused)
        .context("creating the draft")?
        .into_inner();
    done(&format!(
        "draft {} (routed to police region {})",
        draft.id, draft.police_region
    ));
    let assessment = client
        .assess_legal_basis(AssessLegalBasisRequest {
            target: Some(Target::DisclosureId(draft.id.clone())),
            as_of: String::new(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if !assessment.passed {
        bail!(
            "the legal assessment did not pass: {:?}",
            assessment.conditions
        );
    }
    done(&format!(
        "{} passes all {} conditions (registry {})",
        assessment.legal_basis_id,
        assessment.conditions.len(),
        assessment.registry_version
    ));
    let submitted = client
        .submit(SubmitRequest {
            disclosure_id: draft.id.clone(),
            expected_version: draft.version,
        })
        .await
        .map_err(refused)?
        .into_inner();
    done("submitted for decision");

    step(
        2,
        "Decision maker beslut-bollnas (holds the delegation; did not draft it)",
        "approves: the exact payload for the police is bound by its SHA-256",
    );
    let decider = cast.connection(
        &endpoints.disclosure,
        "beslut-bollnas",
        "bollnas-kommun",
        Role::DecisionMaker,
        None,
    )?;
    let approved = decider
        .disclosure()
        .await?
        .approve(ApproveRequest {
            disclosure_id: submitted.id.clone(),
            expected_version: submitted.version,
            comment: "Akut risk; delegationsbeslut enligt 18 c §".into(),
            close_relative_judgement: String::new(),
        })
        .await
        .map_err(refused)
        .context("approving")?
        .into_inner();
    let decision = approved.decision.clone().unwrap_or_default();
    done(&format!(
        "approved, payload sha-256 {}",
        decision.payload_sha256
    ));

    step(
        3,
        "Police officer polis-mitt-1 (region Mitt)",
        "receives it live in the region's inbox and acknowledges it with the diarienummer",
    );
    let officer = cast.connection(
        &endpoints.notification,
        "polis-mitt-1",
        "polisen",
        Role::PoliceOfficer,
        Some("mitt"),
    )?;
    let mut police = officer.notification().await?;
    let mut inbox = police
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .map_err(refused)?
        .into_inner();
    let delivery = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(delivery) = inbox.next().await {
            let delivery = delivery.map_err(refused)?;
            if delivery.disclosure_id == approved.id {
                return Ok(delivery);
            }
        }
        bail!("the region's inbox closed before the disclosure arrived")
    })
    .await
    .context("the disclosure did not reach region Mitt within 30 s")??;
    drop(inbox);
    if delivery.payload_sha256 != decision.payload_sha256 {
        bail!("the delivered payload is not the approved one");
    }
    done(&format!(
        "delivery #{} arrived{}, payload hash matches the approval",
        delivery.sequence,
        if delivery.urgent { " (URGENT)" } else { "" }
    ));
    let police_reference = format!(
        "5000-K{}-26",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let receipt = police
        .acknowledge(AcknowledgeRequest {
            disclosure_id: approved.id.clone(),
            police_reference: police_reference.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let receipt_key = {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&read(&data.receipt_public_key())?)
            .context("the receipt public key")?
    };
    tryggdel_domain::verify_receipt(
        &receipt.statement,
        &receipt.signature,
        &receipt.key_id,
        &receipt_key,
    )
    .context("the receipt's signature")?;
    done(&format!(
        "acknowledged as {police_reference}; the signed receipt verifies (key {})",
        receipt.key_id
    ));

    step(
        4,
        "Caseworker handlaggare-bollnas",
        "sees that the police received it, when and by whom",
    );
    let mut acknowledged = None;
    for _ in 0..300 {
        let current = client
            .get(GetRequest {
                disclosure_id: approved.id.clone(),
                reveal_protected: false,
            })
            .await
            .map_err(refused)?
            .into_inner();
        if current.state == DisclosureState::Acknowledged as i32 {
            acknowledged = Some(current);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acknowledged =
        acknowledged.context("the receipt did not reach the disclosure within 30 s")?;
    let record = acknowledged.delivery.unwrap_or_default();
    done(&format!(
        "ACKNOWLEDGED by {} ({}), police reference {}",
        record.acknowledged_by, record.police_region, record.police_reference
    ));

    step(
        5,
        "Compliance officer granskare-ivo (IVO)",
        "finds every entry about the disclosure in the audit log and proves each is in the signed log",
    );
    let auditor = cast.connection(
        &endpoints.audit,
        "granskare-ivo",
        "ivo",
        Role::ComplianceOfficer,
        None,
    )?;
    let mut audit = auditor.audit().await?;
    let mut entries = Vec::new();
    for _ in 0..300 {
        entries = audit
            .query(QueryRequest {
                disclosure_id: approved.id.clone(),
                ..QueryRequest::default()
            })
            .await
            .map_err(refused)?
            .into_inner()
            .entries;
        // Both services record the receipt, each through its own relay, in either order.
        let logged = |action: &str| {
            entries.iter().any(|entry| {
                serde_json::from_slice::<serde_json::Value>(&entry.entry)
                    .map(|json| json["action"] == action)
                    .unwrap_or(false)
            })
        };
        if logged("disclosure.acknowledged") && logged("notification.acknowledged") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = entries
        .iter()
        .map(|entry| entry.index)
        .max()
        .context("the audit log holds nothing about the disclosure")?;
    for entry in &entries {
        let json: serde_json::Value = serde_json::from_slice(&entry.entry).unwrap_or_default();
        crate::out!(
            "   #{:<5} {:<28} {:<20} {}",
            entry.index,
            json["action"].as_str().unwrap_or_default(),
            json["actor"]["user_id"]
                .as_str()
                .filter(|user| !user.is_empty())
                .unwrap_or("(a service)"),
            json["occurred_at"].as_str().unwrap_or_default()
        );
    }
    let vkey = read(&data.audit_log_vkey())?;
    let verifier =
        CheckpointVerifier::parse_vkey(vkey.trim()).context("the audit log's public key")?;
    let mut checkpoint = None;
    for _ in 0..100 {
        let signed = audit
            .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
            .await
            .map_err(refused)?
            .into_inner();
        if signed.tree_size > last {
            checkpoint = Some(signed);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let checkpoint = checkpoint.context("no signed checkpoint covered the entries within 10 s")?;
    let verified_checkpoint = verifier
        .verify(&checkpoint.note)
        .map_err(|error| anyhow::anyhow!("the checkpoint's signature: {error}"))?;
    done(&format!(
        "checkpoint of {} entries, signature verified with the pinned key {}",
        verified_checkpoint.size(),
        hex::encode(verifier.key_id())
    ));
    let mut verified_entries = Vec::new();
    for entry in &entries {
        let proof = audit
            .get_inclusion_proof(GetInclusionProofRequest {
                entry: Some(get_inclusion_proof_request::Entry::Index(entry.index)),
                tree_size: verified_checkpoint.size(),
            })
            .await
            .map_err(refused)?
            .into_inner();
        let hashes = proof
            .hashes
            .iter()
            .map(|hash| hash_from_slice(hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| anyhow::anyhow!("a proof hash: {error}"))?;
        verify_inclusion(
            &leaf_hash(&entry.entry),
            entry.index,
            verified_checkpoint.size(),
            &hashes,
            verified_checkpoint.root(),
        )
        .map_err(|error| anyhow::anyhow!("entry {}: {error}", entry.index))?;
        verified_entries.push(entry.index);
    }
    done(&format!(
        "inclusion verified for all {} entries against the signed root",
        verified_entries.len()
    ));
    crate::out!(
        "\nThe disclosure went from draft to police receipt, and every step is provably in the log."
    );
    Ok(DemoOutcome {
        disclosure_id: approved.id,
        police_reference,
        verified_entries,
        checkpoint_size: verified_checkpoint.size(),
    })
}
