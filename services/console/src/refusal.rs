//! A service's refusal as a Swedish sentence that says what to do, tied to the form field the
//! service named when it named one. Never a bare status code, never an internal detail.

use tonic::{Code, Status};

/// A refusal, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What happened and what to do, in Swedish.
    pub sentence: String,
    /// The form field it concerns (the form's own name, e.g. `victim_identity_number`).
    pub field: Option<String>,
    pub code: Code,
}

impl Refusal {
    pub fn is_not_found(&self) -> bool {
        self.code == Code::NotFound
    }

    pub fn is_stale(&self) -> bool {
        self.code == Code::Aborted
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.code == Code::Unauthenticated
    }
}

/// The form field behind a service's field path: `content.victim.identity_number` is the
/// form's `victim_identity_number`.
pub fn form_field(path: &str) -> String {
    path.strip_prefix("content.")
        .unwrap_or(path)
        .replace(['.', '[', ']'], "_")
        .trim_end_matches('_')
        .to_owned()
}

/// Swedish for the problems the services name most often; anything else keeps the service's
/// wording after a Swedish lead.
fn problem_in_swedish(problem: &str) -> String {
    let known: &[(&str, &str)] = &[
        (
            "required for an assessment",
            "måste fyllas i för att grunden ska kunna bedömas",
        ),
        ("must not be blank", "får inte vara tomt"),
        ("check digit mismatch", "kontrollsiffran stämmer inte"),
        ("is required", "måste fyllas i"),
        ("is not a valid", "är inte giltigt"),
        ("must lie in the future", "måste ligga i framtiden"),
        (
            "must lie within a year from now",
            "får ligga högst ett år fram i tiden",
        ),
        ("required", "måste fyllas i"),
    ];
    for (english, swedish) in known {
        if problem.contains(english) {
            return (*swedish).to_owned();
        }
    }
    format!("tjänsten svarade: {problem}")
}

impl From<Status> for Refusal {
    fn from(status: Status) -> Refusal {
        let message = status.message();
        let code = status.code();
        let (sentence, field) = match code {
            Code::InvalidArgument => match message.split_once(": ") {
                Some((path, problem)) if !path.contains(' ') => (
                    format!(
                        "Fältet ”{}” {}. Rätta det och försök igen.",
                        crate::words::field_label(&form_field(path)),
                        problem_in_swedish(problem)
                    ),
                    Some(form_field(path)),
                ),
                _ => (
                    format!("Uppgifterna kunde inte tas emot ({message}). Rätta och försök igen."),
                    None,
                ),
            },
            Code::Unauthenticated => (
                "Din inloggning gäller inte längre. Logga in igen.".to_owned(),
                None,
            ),
            Code::PermissionDenied => (permission_in_swedish(message), None),
            Code::NotFound => (
                "Det du söker finns inte, eller så har du inte behörighet att se det.".to_owned(),
                None,
            ),
            Code::Aborted => (
                "Någon annan har ändrat ärendet medan du arbetade. Jämför versionerna och spara igen."
                    .to_owned(),
                None,
            ),
            Code::FailedPrecondition => (precondition_in_swedish(message), None),
            Code::AlreadyExists => (
                "Det finns redan. Ladda om sidan för att se det.".to_owned(),
                None,
            ),
            Code::Unavailable | Code::DeadlineExceeded => (
                "Tjänsten svarar inte just nu. Vänta en stund och försök igen.".to_owned(),
                None,
            ),
            _ => (
                "Något gick fel hos tjänsten. Försök igen; om det upprepas, kontakta supporten."
                    .to_owned(),
                None,
            ),
        };
        Refusal {
            sentence,
            field,
            code,
        }
    }
}

fn permission_in_swedish(message: &str) -> String {
    if message.contains("four-eyes") {
        return "Fyraögonsprincipen: den som skrivit utkastet får inte själv besluta om det. \
                Be en annan beslutsfattare med delegation att ta beslutet."
            .to_owned();
    }
    if message.contains("no delegation") {
        return "Du har ingen delegation att besluta enligt den här rättsliga grunden. \
                Be en beslutsfattare med delegation att ta beslutet."
            .to_owned();
    }
    if message.contains("requires the role") {
        return "Din roll får inte göra detta. Be någon med rätt roll att göra det.".to_owned();
    }
    if message.contains("only the drafter") {
        return "Bara den som skrivit utkastet får göra detta.".to_owned();
    }
    if message.contains("reveal protected") {
        return "Bara den som skrivit utkastet eller en beslutsfattare i ärendet får visa skyddade uppgifter."
            .to_owned();
    }
    "Du har inte behörighet att göra detta. Kontakta din administratör om du behöver det."
        .to_owned()
}

fn precondition_in_swedish(message: &str) -> String {
    if message.contains("request for information") && message.contains("already answered") {
        return "Begäran är redan besvarad med ett utlämnande. Ladda om sidan för att se svaret."
            .to_owned();
    }
    if message.contains("request for information") && message.contains("already refused") {
        return "Begäran är redan avslagen och kan inte besvaras. Ladda om sidan för att se beslutet."
            .to_owned();
    }
    if message.contains("legal assessment does not pass") {
        return "Den rättsliga bedömningen är inte uppfylld. Se villkoren nedan, komplettera utkastet och försök igen."
            .to_owned();
    }
    if message.contains("is not complete") || message.contains("incomplete") {
        return "Utkastet är inte komplett. Fyll i de fält som saknas och försök igen.".to_owned();
    }
    if message.contains("state") || message.contains("cannot") {
        return "Ärendet är inte längre i ett läge där detta går. Ladda om sidan för att se var det står."
            .to_owned();
    }
    format!("Det går inte just nu: {message}.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_request_for_information_is_said_to_be_settled() {
        let refusal = Refusal::from(Status::failed_precondition(
            "the request for information 0190 is already refused",
        ));
        assert!(
            refusal.sentence.contains("redan avslagen"),
            "{}",
            refusal.sentence
        );
        let refusal = Refusal::from(Status::invalid_argument("reply_by: must lie in the future"));
        assert_eq!(refusal.field.as_deref(), Some("reply_by"));
        assert!(
            refusal.sentence.contains("Svar senast"),
            "{}",
            refusal.sentence
        );
        assert!(
            refusal.sentence.contains("i framtiden"),
            "{}",
            refusal.sentence
        );
    }

    #[test]
    fn an_invalid_field_is_named_in_swedish_and_tied_to_its_form_field() {
        let refusal = Refusal::from(Status::invalid_argument(
            "content.victim.identity_number: check digit mismatch",
        ));
        assert_eq!(refusal.field.as_deref(), Some("victim_identity_number"));
        assert!(
            refusal.sentence.contains("kontrollsiffran"),
            "{}",
            refusal.sentence
        );
    }

    #[test]
    fn four_eyes_says_who_should_decide() {
        let refusal = Refusal::from(Status::permission_denied(
            "four-eyes rule: the drafter of a disclosure may not decide it",
        ));
        assert!(refusal.sentence.contains("Fyraögonsprincipen"));
        assert!(refusal.field.is_none());
    }

    #[test]
    fn internal_errors_say_nothing_of_the_cause() {
        let refusal = Refusal::from(Status::internal("database: connection refused at 10.0.0.5"));
        assert!(!refusal.sentence.contains("10.0.0.5"));
        assert!(!refusal.sentence.contains("database"));
    }
}
