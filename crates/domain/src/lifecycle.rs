//! The lifecycle of a disclosure as a pure function.
//!
//! `DRAFT → SUBMITTED → APPROVED → DELIVERED → ACKNOWLEDGED`, with `REJECTED`, `WITHDRAWN` and
//! `EXPIRED` as ends. [`transition`] is the only place the allowed moves are defined; services
//! call it before committing a state change. Nothing leaves a terminal state, and nothing is
//! ever approved on a timeout: a timeout can only expire a draft or a submitted disclosure.
//!
//! A disclosure the police already have (delivered, or delivered and acknowledged) can still be
//! withdrawn: it becomes `WITHDRAWN` like any other withdrawal, and
//! [`DisclosureState::withdrawal_recalls`] tells the service that this withdrawal is a recall
//! the police must be told of (with a reason). Acknowledged is therefore not an end: the only
//! move out of it is that withdrawal.

use crate::text_form::string_enum;

string_enum! {
    /// The state of a disclosure.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum DisclosureState {
        Draft => "draft",
        Submitted => "submitted",
        Approved => "approved",
        Delivered => "delivered",
        Acknowledged => "acknowledged",
        Rejected => "rejected",
        Withdrawn => "withdrawn",
        Expired => "expired",
    }
    unknown: TransitionError::UnknownState;
}

string_enum! {
    /// What someone (or the deadline) does to a disclosure.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum LifecycleAction {
        /// The caseworker edits the draft.
        Update => "update",
        /// The caseworker submits the draft for decision.
        Submit => "submit",
        /// The decision maker sends it back for changes.
        ReturnToDraft => "return_to_draft",
        Approve => "approve",
        Reject => "reject",
        /// Withdrawn, before delivery or (a recall) after it.
        Withdraw => "withdraw",
        Deliver => "deliver",
        /// The police acknowledge receipt.
        Acknowledge => "acknowledge",
        /// The deadline passed before a decision.
        Expire => "expire",
    }
    unknown: TransitionError::UnknownAction;
}

/// A refused transition, or an unknown state/action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("action '{action}' is not allowed in state '{from}'")]
    NotAllowed {
        from: DisclosureState,
        action: LifecycleAction,
    },
    #[error("unknown disclosure state {0:?}")]
    UnknownState(String),
    #[error("unknown lifecycle action {0:?}")]
    UnknownAction(String),
}

impl DisclosureState {
    /// Rejected, withdrawn and expired are ends.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DisclosureState::Rejected | DisclosureState::Withdrawn | DisclosureState::Expired
        )
    }

    /// Whether withdrawing a disclosure in this state recalls it from the police: they have it
    /// (delivered, or delivered and acknowledged).
    pub fn withdrawal_recalls(self) -> bool {
        matches!(
            self,
            DisclosureState::Delivered | DisclosureState::Acknowledged
        )
    }
}

/// The state after `action` in state `from`, or an error naming both.
pub fn transition(
    from: DisclosureState,
    action: LifecycleAction,
) -> Result<DisclosureState, TransitionError> {
    use DisclosureState as State;
    use LifecycleAction as Action;
    match (from, action) {
        (State::Draft, Action::Update) => Ok(State::Draft),
        (State::Draft, Action::Submit) => Ok(State::Submitted),
        (State::Submitted, Action::ReturnToDraft) => Ok(State::Draft),
        (State::Submitted, Action::Approve) => Ok(State::Approved),
        (State::Submitted, Action::Reject) => Ok(State::Rejected),
        (
            State::Draft
            | State::Submitted
            | State::Approved
            | State::Delivered
            | State::Acknowledged,
            Action::Withdraw,
        ) => Ok(State::Withdrawn),
        (State::Approved, Action::Deliver) => Ok(State::Delivered),
        (State::Delivered, Action::Acknowledge) => Ok(State::Acknowledged),
        (State::Draft | State::Submitted, Action::Expire) => Ok(State::Expired),
        _ => Err(TransitionError::NotAllowed { from, action }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use DisclosureState::*;
    use LifecycleAction::*;
    use proptest::prelude::*;

    /// Every (state, action) pair and its expected outcome, written out in full.
    const EXPECTED: [(DisclosureState, LifecycleAction, Option<DisclosureState>); 72] = [
        (Draft, Update, Some(Draft)),
        (Draft, Submit, Some(Submitted)),
        (Draft, ReturnToDraft, None),
        (Draft, Approve, None),
        (Draft, Reject, None),
        (Draft, Withdraw, Some(Withdrawn)),
        (Draft, Deliver, None),
        (Draft, Acknowledge, None),
        (Draft, Expire, Some(Expired)),
        (Submitted, Update, None),
        (Submitted, Submit, None),
        (Submitted, ReturnToDraft, Some(Draft)),
        (Submitted, Approve, Some(Approved)),
        (Submitted, Reject, Some(Rejected)),
        (Submitted, Withdraw, Some(Withdrawn)),
        (Submitted, Deliver, None),
        (Submitted, Acknowledge, None),
        (Submitted, Expire, Some(Expired)),
        (Approved, Update, None),
        (Approved, Submit, None),
        (Approved, ReturnToDraft, None),
        (Approved, Approve, None),
        (Approved, Reject, None),
        (Approved, Withdraw, Some(Withdrawn)),
        (Approved, Deliver, Some(Delivered)),
        (Approved, Acknowledge, None),
        (Approved, Expire, None),
        (Delivered, Update, None),
        (Delivered, Submit, None),
        (Delivered, ReturnToDraft, None),
        (Delivered, Approve, None),
        (Delivered, Reject, None),
        (Delivered, Withdraw, Some(Withdrawn)),
        (Delivered, Deliver, None),
        (Delivered, Acknowledge, Some(Acknowledged)),
        (Delivered, Expire, None),
        (Acknowledged, Update, None),
        (Acknowledged, Submit, None),
        (Acknowledged, ReturnToDraft, None),
        (Acknowledged, Approve, None),
        (Acknowledged, Reject, None),
        (Acknowledged, Withdraw, Some(Withdrawn)),
        (Acknowledged, Deliver, None),
        (Acknowledged, Acknowledge, None),
        (Acknowledged, Expire, None),
        (Rejected, Update, None),
        (Rejected, Submit, None),
        (Rejected, ReturnToDraft, None),
        (Rejected, Approve, None),
        (Rejected, Reject, None),
        (Rejected, Withdraw, None),
        (Rejected, Deliver, None),
        (Rejected, Acknowledge, None),
        (Rejected, Expire, None),
        (Withdrawn, Update, None),
        (Withdrawn, Submit, None),
        (Withdrawn, ReturnToDraft, None),
        (Withdrawn, Approve, None),
        (Withdrawn, Reject, None),
        (Withdrawn, Withdraw, None),
        (Withdrawn, Deliver, None),
        (Withdrawn, Acknowledge, None),
        (Withdrawn, Expire, None),
        (Expired, Update, None),
        (Expired, Submit, None),
        (Expired, ReturnToDraft, None),
        (Expired, Approve, None),
        (Expired, Reject, None),
        (Expired, Withdraw, None),
        (Expired, Deliver, None),
        (Expired, Acknowledge, None),
        (Expired, Expire, None),
    ];

    #[test]
    fn every_state_action_pair_matches_the_table() {
        for (from, action, expected) in EXPECTED {
            match expected {
                Some(to) => assert_eq!(transition(from, action), Ok(to), "{from} + {action}"),
                None => assert_eq!(
                    transition(from, action),
                    Err(TransitionError::NotAllowed { from, action }),
                    "{from} + {action}"
                ),
            }
        }
    }

    #[test]
    fn the_table_covers_every_pair_exactly_once() {
        for from in DisclosureState::ALL {
            for action in LifecycleAction::ALL {
                let rows = EXPECTED
                    .iter()
                    .filter(|(state, row_action, _)| *state == from && *row_action == action)
                    .count();
                assert_eq!(rows, 1, "{from} + {action}");
            }
        }
    }

    #[test]
    fn refusal_names_state_and_action() {
        let error = transition(Delivered, Approve).unwrap_err();
        assert_eq!(
            error.to_string(),
            "action 'approve' is not allowed in state 'delivered'"
        );
    }

    #[test]
    fn names_round_trip_and_terminal_states() {
        for state in DisclosureState::ALL {
            assert_eq!(DisclosureState::parse(state.as_str()), Ok(state));
        }
        for action in LifecycleAction::ALL {
            assert_eq!(LifecycleAction::parse(action.as_str()), Ok(action));
        }
        let terminal: Vec<DisclosureState> = DisclosureState::ALL
            .into_iter()
            .filter(|state| state.is_terminal())
            .collect();
        assert_eq!(terminal, [Rejected, Withdrawn, Expired]);
        assert!(DisclosureState::parse("DRAFT").is_err());
        assert!(LifecycleAction::parse("returntodraft").is_err());
    }

    #[test]
    fn terminal_states_allow_no_action() {
        for state in DisclosureState::ALL
            .into_iter()
            .filter(|state| state.is_terminal())
        {
            for action in LifecycleAction::ALL {
                assert!(transition(state, action).is_err(), "{state} + {action}");
            }
        }
    }

    #[test]
    fn only_a_withdrawal_of_what_the_police_have_is_a_recall() {
        let recalling: Vec<DisclosureState> = DisclosureState::ALL
            .into_iter()
            .filter(|state| state.withdrawal_recalls())
            .collect();
        assert_eq!(recalling, [Delivered, Acknowledged]);
        for state in recalling {
            assert_eq!(transition(state, Withdraw), Ok(Withdrawn));
        }
        assert_eq!(
            LifecycleAction::ALL
                .into_iter()
                .filter(|action| transition(Acknowledged, *action).is_ok())
                .collect::<Vec<_>>(),
            [Withdraw]
        );
    }

    proptest! {
        #[test]
        fn no_sequence_of_actions_leaves_a_terminal_state(
            start in 0usize..8,
            actions in proptest::collection::vec(0usize..9, 0..40),
        ) {
            let mut state = DisclosureState::ALL[start];
            let mut reached_terminal = state.is_terminal();
            for action_index in actions {
                let action = LifecycleAction::ALL[action_index];
                match transition(state, action) {
                    Ok(next) => {
                        prop_assert!(!reached_terminal, "left terminal state {} by {}", state, action);
                        state = next;
                        reached_terminal = state.is_terminal();
                    }
                    Err(error) => {
                        prop_assert_eq!(error, TransitionError::NotAllowed { from: state, action });
                    }
                }
            }
        }

        #[test]
        fn delivery_only_follows_approval(actions in proptest::collection::vec(0usize..9, 0..40)) {
            let mut state = Draft;
            let mut approved = false;
            for action_index in actions {
                if let Ok(next) = transition(state, LifecycleAction::ALL[action_index]) {
                    if next == Approved {
                        approved = true;
                    }
                    if next == Delivered {
                        prop_assert!(approved);
                    }
                    state = next;
                }
            }
        }
    }
}
