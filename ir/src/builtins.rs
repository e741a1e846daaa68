//! Builtin functions: the methods on strings, lists, maps, options and
//! results that workflows may call inline. The interpreter evaluates them;
//! this table gives their names and arities to the parser and the verifier.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! builtins {
    ($($(#[doc = $doc:literal])* $variant:ident $name:literal $arity:literal;)*) => {
        /// A builtin function, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Builtin {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Builtin {
            /// Every builtin, in declaration order.
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Builtin::$variant => $name,)*
                }
            }

            /// How many arguments it takes.
            pub fn arity(self) -> usize {
                match self {
                    $(Builtin::$variant => $arity,)*
                }
            }

            pub fn doc(self) -> &'static str {
                match self {
                    $(Builtin::$variant => concat!($($doc),*),)*
                }
            }
        }
    };
}

builtins! {
    /// Length of a string (in bytes), bytes, list or map.
    Len "len" 1;
    /// Whether a string, bytes, list or map is empty.
    IsEmpty "is_empty" 1;
    /// Whether a string contains a substring, a list an element, or a map a key.
    Contains "contains" 2;
    /// The list with a value appended.
    Push "push" 2;
    /// The element at an index of a list, or the value at a key of a map, or null.
    Get "get" 2;
    /// The map with a key set to a value.
    Insert "insert" 3;
    /// The map without a key, or the list without the element at an index.
    Remove "remove" 2;
    /// The keys of a map, in order.
    Keys "keys" 1;
    /// The values of a map, in key order.
    Values "values" 1;
    /// `[start, end)` of a list or string (string offsets are bytes on char boundaries).
    Slice "slice" 3;
    /// The list of ints `[start, end)`.
    Range "range" 2;
    /// The list reversed.
    Reverse "reverse" 1;
    /// The list sorted in value order.
    Sort "sort" 1;
    /// The sum of a list of numbers.
    Sum "sum" 1;
    /// The smaller of two values.
    Min "min" 2;
    /// The larger of two values.
    Max "max" 2;
    /// The absolute value of a number.
    Abs "abs" 1;
    /// A value's text: strings as they are, other values in literal syntax.
    ToString "to_string" 1;
    /// The string in upper case.
    ToUpper "to_upper" 1;
    /// The string in lower case.
    ToLower "to_lower" 1;
    /// The string without leading and trailing whitespace.
    Trim "trim" 1;
    /// Whether a string starts with a prefix.
    StartsWith "starts_with" 2;
    /// Whether a string ends with a suffix.
    EndsWith "ends_with" 2;
    /// The string with every occurrence of a pattern replaced.
    Replace "replace" 3;
    /// The parts of a string between separators.
    Split "split" 2;
    /// A list of strings joined with a separator.
    Join "join" 2;
    /// `Ok(int)` parsed from a string, or `Err(message)`.
    ParseInt "parse_int" 1;
    /// An int converted to a float.
    ToFloat "to_float" 1;
    /// A float truncated to an int; fails the run if it does not fit.
    ToInt "to_int" 1;
    /// Whether a value is `Some` (not null).
    IsSome "is_some" 1;
    /// Whether a value is `None` (null).
    IsNone "is_none" 1;
    /// Whether a value is the variant `Ok`.
    IsOk "is_ok" 1;
    /// Whether a value is the variant `Err`.
    IsErr "is_err" 1;
    /// The payload of `Some`/`Ok`, or the default for `None`/`Err`.
    UnwrapOr "unwrap_or" 2;
    /// The kind of a value as a string: `"int"`, `"list"`, ...
    TypeOf "type_of" 1;
}

impl Builtin {
    pub fn from_name(s: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == s)
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
