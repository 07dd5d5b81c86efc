//! Value types whose identity is a text form: enums with one fixed identifier a variant, and
//! newtypes over a validated string. Each is declared once with its text and its error, and
//! `as_str`, `parse`, `Display` and serde all come from that one declaration, so the text a
//! value prints as is always the text it parses from.

/// Declares a fieldless enum together with its text form.
///
/// Each variant is written `Variant => "text",`; after the enum, `unknown: Error::Variant;`
/// names the error variant (holding the refused input) that `parse` returns. Generates the
/// enum, `ALL` (every variant in declaration order), `as_str`, `parse`, `Display` and serde
/// through [`serde_via_string`](crate::serde_support::serde_via_string).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $visibility:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
        unknown: $error:ident :: $unknown:ident;
    ) => {
        $(#[$meta])*
        $visibility enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            #[doc = concat!("The text form, one of", $(" `", $text, "`",)+ ".")]
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Parses the text form produced by `as_str`; anything else is refused.
            pub fn parse(input: &str) -> Result<$name, $error> {
                $name::ALL
                    .into_iter()
                    .find(|value| value.as_str() == input)
                    .ok_or_else(|| $error::$unknown(input.to_owned()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        $crate::serde_support::serde_via_string!($name);
    };
}

/// Declares a newtype over a `String` that only holds text passing a check.
///
/// After the struct, the doc comment of `parse`, then `valid: <fn(&str) -> bool>,` and
/// `invalid: Error::Variant;` (the error holding the refused input). Generates the struct,
/// `parse`, `as_str`, `Display` and serde.
macro_rules! string_newtype {
    (
        $(#[$meta:meta])*
        $visibility:vis struct $name:ident;
        $(#[$parse_meta:meta])*
        valid: $valid:expr,
        invalid: $error:ident :: $invalid:ident;
    ) => {
        $(#[$meta])*
        $visibility struct $name(String);

        impl $name {
            $(#[$parse_meta])*
            pub fn parse(input: &str) -> Result<$name, $error> {
                let valid: fn(&str) -> bool = $valid;
                if valid(input) {
                    Ok($name(input.to_owned()))
                } else {
                    Err($error::$invalid(input.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        $crate::serde_support::serde_via_string!($name);
    };
}

pub(crate) use {string_enum, string_newtype};
